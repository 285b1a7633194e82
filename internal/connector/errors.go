package connector

import (
	"fmt"
	"net/http"
	"strings"
)

// Kinds of Error.
const (
	// KindArchive: the archive itself is unacceptable (not a zip, unsafe
	// paths, links, too large, a zip bomb, a required file missing).
	KindArchive = "archive"
	// KindManifest: the archive is sound but its manifest, or a file it
	// names, is not valid.
	KindManifest = "manifest"
)

// Problem is one thing wrong, with where. For manifest problems Path is a
// JSON pointer into the manifest ("/components/1/http/method"; "" for
// the whole document); for archive problems it is the entry's name in the
// archive ("" for the archive as a whole).
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error lists every problem found in a package. Callers answer 400 for
// archive problems and 422 for manifest problems; see Kind and Status.
type Error struct {
	kind     string
	Problems []Problem
}

// Kind returns KindArchive or KindManifest.
func (e *Error) Kind() string { return e.kind }

// Status is the HTTP status an API answers with: 400 for archive
// problems, 422 for manifest problems.
func (e *Error) Status() int {
	if e.kind == KindArchive {
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}

func (e *Error) Error() string {
	var b strings.Builder
	switch len(e.Problems) {
	case 0:
		fmt.Fprintf(&b, "invalid connector %s", e.kind)
	case 1:
		fmt.Fprintf(&b, "invalid connector %s: %s", e.kind, e.Problems[0])
	default:
		fmt.Fprintf(&b, "invalid connector %s (%d problems): ", e.kind, len(e.Problems))
		for i, p := range e.Problems {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p.String())
		}
	}
	return b.String()
}

// MaxProblems bounds the problems an Error lists; one more problem, with
// an empty path, says how many were left out.
const MaxProblems = 100

// problems collects problems of one kind.
type problems struct {
	kind string
	list []Problem
}

func (p *problems) add(path, format string, args ...any) {
	p.list = append(p.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns the collected problems as an *Error, or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	list := p.list
	if len(list) > MaxProblems {
		more := len(list) - MaxProblems
		list = append(list[:MaxProblems:MaxProblems], Problem{Message: fmt.Sprintf("%d more problems are not listed", more)})
	}
	return &Error{kind: p.kind, Problems: list}
}
