package connector

import (
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/mod/semver"
)

// semverPattern is MAJOR.MINOR.PATCH with optional pre-release and build
// metadata, as semver.org defines them (no "v" prefix).
var semverPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// parseVersion checks v and returns it in the form golang.org/x/mod/semver
// wants ("v" + v).
func parseVersion(v string) (string, error) {
	if !semverPattern.MatchString(v) {
		return "", fmt.Errorf("version %q is not a semantic version MAJOR.MINOR.PATCH such as 1.4.2", v)
	}
	sv := "v" + v
	if !semver.IsValid(sv) {
		return "", fmt.Errorf("version %q is not a valid semantic version", v)
	}
	return sv, nil
}

// CompareVersions compares two semantic versions: -1 if a < b, 0 if they
// are equal in precedence (build metadata is ignored), +1 if a > b.
func CompareVersions(a, b string) (int, error) {
	va, err := parseVersion(a)
	if err != nil {
		return 0, fmt.Errorf("comparing versions: %w", err)
	}
	vb, err := parseVersion(b)
	if err != nil {
		return 0, fmt.Errorf("comparing versions: %w", err)
	}
	return semver.Compare(va, vb), nil
}

// IsMajorUpdate reports whether moving an installed connector from version
// from to version to is breaking, so that it needs confirmation and stops
// the flows that use the connector. That is when the major versions
// differ, or, while the major version is 0, when the minor versions
// differ: semantic versioning promises nothing below 1.0.0, and we treat
// 0.MINOR as the compatibility line, as most package managers do
// (0.3.1 -> 0.3.2 is not breaking, 0.3.2 -> 0.4.0 is). Moving down across
// such a line is breaking too. Pre-release and build metadata never make
// a move breaking on their own.
func IsMajorUpdate(from, to string) (bool, error) {
	vf, err := parseVersion(from)
	if err != nil {
		return false, fmt.Errorf("checking for a major update: %w", err)
	}
	vt, err := parseVersion(to)
	if err != nil {
		return false, fmt.Errorf("checking for a major update: %w", err)
	}
	return compatLine(vf) != compatLine(vt), nil
}

// compatLine is "vMAJOR", or "v0.MINOR" for major version 0.
func compatLine(v string) string {
	if m := semver.Major(v); m != "v0" {
		return m
	}
	mm := semver.MajorMinor(v)
	return strings.TrimSuffix(mm, ".")
}
