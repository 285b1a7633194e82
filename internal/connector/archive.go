package connector

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/plugboard/plugboard/internal/script"
)

// Limits of an archive.
const (
	// MaxUnpacked bounds the bytes of all files together, unpacked; it
	// also bounds the archive itself.
	MaxUnpacked = 10 << 20
	// MaxRatio bounds the compression ratio of each entry and of the whole
	// archive (unpacked bytes over packed bytes).
	MaxRatio = 100
	// MaxEntries bounds the entries of an archive, directories included.
	MaxEntries = 1000
	// ratioFloor: entries (and archives) smaller than this, unpacked, are
	// never refused for their ratio, since small files of repeated text
	// legitimately compress very well and cannot amount to a bomb.
	ratioFloor = 64 << 10
)

// Package is a checked archive.
type Package struct {
	Manifest Manifest
	// ManifestName is the manifest's file: ManifestFile, ManifestYAMLFile
	// or ManifestYMLFile.
	ManifestName string
	// ManifestJSON is the manifest as JSON: connector.json byte for byte,
	// or the JSON a YAML manifest stands for. Store this rather than
	// Files[ManifestName], which may be YAML.
	ManifestJSON []byte
	Changelog    string            // CHANGELOG.md, required
	Files        map[string][]byte // every file, by clean slash path
	Digest       string            // hex SHA-256 of the archive bytes
}

// ReadArchive reads a connector zip from memory and checks everything: the
// archive's safety (paths, links, size, compression ratio, entry count),
// the required files (one manifest, JSON or YAML, and the changelog), the
// manifest, and the files the manifest names
// (the icon, scripts, which must compile in the core.Code sandbox). It
// never writes to disk. A refused archive yields an *Error listing every
// problem found, of kind KindArchive when the archive itself is unsafe or
// incomplete and KindManifest otherwise.
func ReadArchive(data []byte) (*Package, error) {
	files, err := unpack(data)
	if err != nil {
		return nil, err
	}
	ps := &problems{kind: KindArchive}
	manifestName := ""
	for _, name := range manifestFiles {
		if _, ok := files[name]; !ok {
			continue
		}
		if manifestName != "" {
			ps.add(name, "the archive also holds %s; a package has exactly one manifest", manifestName)
			continue
		}
		manifestName = name
	}
	if manifestName == "" {
		ps.add(ManifestFile, "the archive has no %s, %s or %s at its root", ManifestFile, ManifestYAMLFile, ManifestYMLFile)
	}
	changelog, ok := files[ChangelogFile]
	switch {
	case !ok:
		ps.add(ChangelogFile, "the archive has no %s at its root", ChangelogFile)
	case !utf8.Valid(changelog):
		ps.add(ChangelogFile, "%s is not UTF-8 text", ChangelogFile)
	case len(bytes.TrimSpace(changelog)) == 0:
		ps.add(ChangelogFile, "%s is empty", ChangelogFile)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	m, manifestJSON, err := parseManifest(manifestName, files[manifestName])
	if err != nil {
		return nil, err
	}
	mps := &problems{kind: KindManifest}
	checkFiles(mps, m, files)
	if err := mps.err(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &Package{
		Manifest:     *m,
		ManifestName: manifestName,
		ManifestJSON: manifestJSON,
		Changelog:    string(changelog),
		Files:        files,
		Digest:       hex.EncodeToString(sum[:]),
	}, nil
}

// checkFiles checks the files the manifest names.
func checkFiles(ps *problems, m *Manifest, files map[string][]byte) {
	if m.Icon != "" && !strings.HasPrefix(m.Icon, "data:") {
		if _, ok := files[m.Icon]; !ok {
			ps.add("/icon", "the icon %q is not in the archive", m.Icon)
		}
	}
	var sandbox *script.Sandbox
	for i, c := range m.Components {
		if c.Script == "" {
			continue
		}
		p := "/components/" + strconv.Itoa(i) + "/script"
		src, ok := files[c.Script]
		if !ok {
			ps.add(p, "the script %q is not in the archive", c.Script)
			continue
		}
		if !utf8.Valid(src) {
			ps.add(p, "the script %q is not UTF-8 text", c.Script)
			continue
		}
		if sandbox == nil {
			sandbox = script.New(script.Limits{Concurrency: 1, CacheEntries: 1})
		}
		if err := sandbox.Check(string(src)); err != nil {
			ps.add(p, "the script %q does not compile: %v", c.Script, err)
		}
	}
}

// unpack reads every entry of a zip archive in memory, refusing unsafe
// archives with an *Error of kind KindArchive.
func unpack(data []byte) (map[string][]byte, error) {
	ps := &problems{kind: KindArchive}
	if len(data) > MaxUnpacked {
		ps.add("", "the archive is %d bytes long; at most %d are allowed", len(data), MaxUnpacked)
		return nil, ps.err()
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		ps.add("", "not a zip archive: %v", err)
		return nil, ps.err()
	}
	if len(zr.File) > MaxEntries {
		ps.add("", "the archive has %d entries; at most %d are allowed", len(zr.File), MaxEntries)
		return nil, ps.err()
	}
	// Check every name and mode before reading anything.
	seen := make(map[string]string, len(zr.File))
	var regular []*zip.File
	for _, f := range zr.File {
		name := f.Name
		if msg := unsafeName(name); msg != "" {
			ps.add(name, "%s", msg)
			continue
		}
		// Names that differ only in case would collide on many file
		// systems.
		key := strings.ToLower(strings.TrimSuffix(name, "/"))
		if other, ok := seen[key]; ok {
			if other == name {
				ps.add(name, "the archive holds this name more than once")
			} else {
				ps.add(name, "the archive also holds %q; names may not differ only in case", other)
			}
			continue
		}
		seen[key] = name
		mode := f.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			ps.add(name, "links are not allowed")
		case mode.IsDir():
			if !strings.HasSuffix(name, "/") {
				ps.add(name, "a directory entry's name must end with /")
			}
		case !mode.IsRegular():
			ps.add(name, "only regular files and directories are allowed, not %s", mode.Type())
		case strings.HasSuffix(name, "/"):
			ps.add(name, "a file's name cannot end with /")
		default:
			regular = append(regular, f)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	files := make(map[string][]byte, len(regular))
	var total int64
	for _, f := range regular {
		b, err := readEntry(f, MaxUnpacked-total)
		if err != nil {
			ps.add(f.Name, "%v", err)
			return nil, ps.err()
		}
		total += int64(len(b))
		files[f.Name] = b
	}
	if total > ratioFloor && total > int64(len(data))*MaxRatio {
		ps.add("", "the archive unpacks to %d bytes, more than %d times its size", total, MaxRatio)
		return nil, ps.err()
	}
	return files, nil
}

var (
	errTooLarge = fmt.Errorf("the archive unpacks to more than %d bytes", MaxUnpacked)
	errRatio    = fmt.Errorf("the entry unpacks to more than %d times its compressed size", MaxRatio)
)

// readEntry reads one entry, counting the bytes actually produced rather
// than trusting the sizes the headers declare: at most budget bytes, and
// at most MaxRatio times the entry's compressed size (beyond ratioFloor).
func readEntry(f *zip.File, budget int64) ([]byte, error) {
	limit := budget
	ratioLimit := max(int64(f.CompressedSize64), 1) * MaxRatio
	ratioLimit = max(ratioLimit, ratioFloor)
	if f.CompressedSize64 > uint64(MaxUnpacked) {
		ratioLimit = limit // the product could overflow; budget bounds it anyway
	}
	limit = min(limit, ratioLimit)
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening the entry: %w", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the entry: %w", err)
	}
	if n > limit {
		if limit == ratioLimit && ratioLimit < budget {
			return nil, errRatio
		}
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// packTime is the modification time of every entry Pack writes, so that
// packing the same files always yields the same bytes.
var packTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Pack zips the files under dir (hidden files and directories, whose names
// start with ".", are left out) deterministically: sorted names, fixed
// times and modes. It then checks the result with ReadArchive and returns
// its *Error if the package is not valid. Links and special files in dir
// are refused.
func Pack(dir string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	defer root.Close()
	var names []string
	var total int64
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files can be packed, not %s", name, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		if total > MaxUnpacked {
			return fmt.Errorf("the files under %s add up to more than %d bytes", dir, MaxUnpacked)
		}
		if len(names) >= MaxEntries {
			return fmt.Errorf("%s holds more than %d files", dir, MaxEntries)
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		b, err := root.ReadFile(filepath.FromSlash(name))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: packTime}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("packing %s: %w", name, err)
		}
		if _, err := w.Write(b); err != nil {
			return nil, fmt.Errorf("packing %s: %w", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("finishing the archive: %w", err)
	}
	data := buf.Bytes()
	if _, err := ReadArchive(data); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, fmt.Errorf("checking the archive: %w", err)
	}
	return data, nil
}
