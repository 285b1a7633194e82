package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/connector"
)

const connectorUsage = `Usage:
  plugboard connector pack DIR [-o FILE]
      zip the connector in DIR (its manifest is connector.json,
      connector.yaml or connector.yml) and check it; writes
      NAME-VERSION.zip in the current directory unless -o is given
  plugboard connector publish FILE --url URL --token TOKEN
      upload a packed connector to a Plugboard server
`

// connectorCmd runs "plugboard connector ...".
func connectorCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, connectorUsage)
		return errors.New("connector: no subcommand given")
	}
	switch args[0] {
	case "pack":
		return connectorPack(args[1:], stdout, stderr)
	case "publish":
		return connectorPublish(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, connectorUsage)
		return nil
	}
	fmt.Fprint(stderr, connectorUsage)
	return fmt.Errorf("connector: unknown subcommand %q", args[0])
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func connectorPack(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("connector pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the archive to `FILE` (default NAME-VERSION.zip)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, connectorUsage)
		return errors.New("connector pack: give exactly one directory")
	}
	dir := pos[0]
	data, err := connector.Pack(dir)
	if err != nil {
		if printProblems(stderr, err) {
			return fmt.Errorf("packing %s: the connector is not valid", dir)
		}
		return fmt.Errorf("packing %s: %w", dir, err)
	}
	pkg, err := connector.ReadArchive(data)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", dir, err)
	}
	name := *out
	if name == "" {
		name = pkg.Manifest.Name + "-" + pkg.Manifest.Version + ".zip"
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "packed %s %s (%s, %d components, %d files, %d bytes) into %s\nsha256 %s\n",
		pkg.Manifest.Name, pkg.Manifest.Version, pkg.ManifestName, len(pkg.Manifest.Components), len(pkg.Files), len(data), name, pkg.Digest)
	return nil
}

// printProblems lists a package's problems, one a line, with their paths,
// and reports whether err had any.
func printProblems(w io.Writer, err error) bool {
	var pe *connector.Error
	if !errors.As(err, &pe) {
		return false
	}
	fmt.Fprintf(w, "%d %s problem(s):\n", len(pe.Problems), pe.Kind())
	for _, p := range pe.Problems {
		path := p.Path
		if path == "" {
			path = "(root)"
		}
		fmt.Fprintf(w, "  %s: %s\n", path, p.Message)
	}
	return true
}

func connectorPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("connector publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", os.Getenv("PLUGBOARD_URL"), "the server's base `URL` (default $PLUGBOARD_URL)")
	token := fs.String("token", os.Getenv("PLUGBOARD_TOKEN"), "an admin API `TOKEN` (default $PLUGBOARD_TOKEN)")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, connectorUsage)
		return errors.New("connector publish: give exactly one archive")
	}
	if *url == "" || *token == "" {
		return errors.New("connector publish: --url and --token are required")
	}
	file := pos[0]
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	// Check locally first: the server would refuse the same problems.
	if _, err := connector.ReadArchive(data); err != nil {
		if printProblems(stderr, err) {
			return fmt.Errorf("checking %s: the connector is not valid", file)
		}
		return fmt.Errorf("checking %s: %w", file, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	endpoint := strings.TrimRight(*url, "/") + "/api/v1/connectors"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("preparing the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+*token)
	req.Header.Set("Accept", "application/json, application/problem+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("publishing %s: %w", file, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("publishing %s: the server answered %s: %s", file, resp.Status, problemDetail(body, stderr))
	}
	stdout.Write(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	return nil
}

// problemDetail returns the detail of a problem document (RFC 9457), and
// prints its listed problems, if any; otherwise the body as text.
func problemDetail(body []byte, stderr io.Writer) string {
	type item struct {
		Path    string `json:"path"`
		Field   string `json:"field"`
		Message string `json:"message"`
	}
	var doc struct {
		Title    string `json:"title"`
		Detail   string `json:"detail"`
		Problems []item `json:"problems"`
		Errors   []item `json:"errors"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return strings.TrimSpace(string(body))
	}
	for _, p := range append(doc.Problems, doc.Errors...) {
		fmt.Fprintf(stderr, "  %s: %s\n", cmp.Or(p.Path, p.Field, "(root)"), p.Message)
	}
	if doc.Detail != "" {
		return doc.Detail
	}
	if doc.Title != "" {
		return doc.Title
	}
	return strings.TrimSpace(string(body))
}
