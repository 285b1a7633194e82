package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxYAMLDepth bounds how deeply a YAML manifest nests, aliases expanded:
// as deep as encoding/json reads.
const maxYAMLDepth = 10000

// yamlToJSON converts a YAML manifest to the JSON it stands for, keeping
// the order of keys, or adds to ps why it cannot. Only what maps to JSON
// cleanly is accepted: one document; mappings with string keys, without
// merge keys (<<); sequences; strings, numbers (not .inf or .nan),
// booleans and null. Timestamps stay the strings they are written as.
// Aliases are expanded, and the JSON, aliases expanded, must fit in
// MaxManifestBytes: an alias bomb stops there, having done no more work
// than writing that many bytes.
func yamlToJSON(ps *problems, name string, data []byte) []byte {
	doc, err := decodeYAML(data)
	if err != nil {
		ps.add("", "%s %v", name, err)
		return nil
	}
	c := &yamlConverter{ps: ps, name: name, anchors: map[*yaml.Node]anchored{}}
	c.enc = json.NewEncoder(&c.out)
	c.enc.SetEscapeHTML(false)
	if _, err := c.write(doc, nil, 0); err != nil {
		return nil
	}
	if c.out.Len() > MaxManifestBytes {
		c.tooLarge()
		return nil
	}
	return c.out.Bytes()
}

// decodeYAML parses the one document data holds.
func decodeYAML(data []byte) (*yaml.Node, error) {
	d := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := d.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("is empty")
		}
		return nil, fmt.Errorf("is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	switch err := d.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, fmt.Errorf("is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	default:
		return nil, fmt.Errorf("holds more than one YAML document (a second one starts at line %d); a manifest is one document", next.Line)
	}
	return &doc, nil
}

// errYAMLStop says the conversion stopped: the JSON would be too large or
// too deep, and nothing more is worth reporting.
var errYAMLStop = errors.New("stopped")

// errYAMLInvalid says a value could not be converted; its problems are in
// ps.
var errYAMLInvalid = errors.New("invalid")

// yamlConverter writes the JSON of a YAML document to out.
type yamlConverter struct {
	ps   *problems
	name string
	out  bytes.Buffer
	enc  *json.Encoder // writes strings to out
	// anchors holds each anchored node once it has been written (or is
	// being written), so that its aliases copy its JSON.
	anchors map[*yaml.Node]anchored
}

// anchored is where the JSON of an anchored node is in out.
type anchored struct {
	start, end int
	depth      int  // how deeply the value nests
	busy       bool // the node is being written: an alias to it is a loop
	err        error
}

// write writes the JSON of n, found at the JSON pointer tokens path inside
// depth arrays and objects. It returns how many levels of arrays and
// objects n itself nests, or errYAMLStop, or errYAMLInvalid once it has added the
// problems of n.
func (c *yamlConverter) write(n *yaml.Node, path []string, depth int) (int, error) {
	if n.Kind == yaml.AliasNode {
		return c.alias(n, path, depth)
	}
	if n.Anchor == "" {
		return c.node(n, path, depth)
	}
	start := c.out.Len()
	c.anchors[n] = anchored{busy: true}
	d, err := c.node(n, path, depth)
	c.anchors[n] = anchored{start: start, end: c.out.Len(), depth: d, err: err}
	return d, err
}

// alias copies the JSON its anchor was written as.
func (c *yamlConverter) alias(n *yaml.Node, path []string, depth int) (int, error) {
	target := n.Alias
	if target == nil {
		c.ps.add(pointer(path), "line %d: the alias *%s names no anchor", n.Line, n.Value)
		return 0, errYAMLInvalid
	}
	a, ok := c.anchors[target]
	switch {
	case !ok:
		// The anchor is on a mapping key, or inside a value left out for
		// its key's problem: it has not been written yet.
		return c.write(target, path, depth)
	case a.busy:
		c.ps.add(pointer(path), "line %d: the alias *%s is used inside the value it names", n.Line, n.Value)
		return 0, errYAMLInvalid
	case a.err != nil:
		// Its problems were reported where the anchor is.
		return 0, errYAMLInvalid
	case depth+a.depth > maxYAMLDepth:
		c.ps.add(pointer(path), "line %d: the manifest nests more than %d levels deep once the alias *%s is expanded", n.Line, maxYAMLDepth, n.Value)
		return 0, errYAMLStop
	case c.out.Len()+a.end-a.start > MaxManifestBytes:
		return 0, c.tooLarge()
	}
	// out only grows, so the anchor's bytes are still where they were.
	c.out.Write(c.out.Bytes()[a.start:a.end])
	return a.depth, nil
}

func (c *yamlConverter) tooLarge() error {
	c.ps.add("", "%s stands for more than %d bytes of JSON, the most a manifest may hold (an alias counts as often as it is used)",
		c.name, MaxManifestBytes)
	return errYAMLStop
}

// tooDeep adds a problem if a container at depth would nest deeper than
// maxYAMLDepth.
func (c *yamlConverter) tooDeep(n *yaml.Node, path []string, depth int) error {
	if depth < maxYAMLDepth {
		return nil
	}
	c.ps.add(pointer(path), "line %d: the manifest nests more than %d levels deep", n.Line, maxYAMLDepth)
	return errYAMLStop
}

// node writes a node other than an alias.
func (c *yamlConverter) node(n *yaml.Node, path []string, depth int) (int, error) {
	if c.out.Len() > MaxManifestBytes {
		return 0, c.tooLarge()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			c.out.WriteString("null")
			return 0, nil
		}
		return c.write(n.Content[0], path, depth)
	case yaml.MappingNode:
		return c.mapping(n, path, depth)
	case yaml.SequenceNode:
		return c.sequence(n, path, depth)
	case yaml.ScalarNode:
		return 0, c.scalar(n, path)
	}
	c.ps.add(pointer(path), "line %d: a YAML node of kind %d has no JSON equivalent", n.Line, n.Kind)
	return 0, errYAMLInvalid
}

func (c *yamlConverter) mapping(n *yaml.Node, path []string, depth int) (int, error) {
	if tag := n.ShortTag(); tag != "!!map" {
		c.ps.add(pointer(path), "line %d: the tag %s has no JSON equivalent", n.Line, tag)
		return 0, errYAMLInvalid
	}
	if err := c.tooDeep(n, path, depth); err != nil {
		return 0, err
	}
	var failed error
	deepest := 0
	lines := make(map[string]int, len(n.Content)/2)
	c.out.WriteByte('{')
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, ok := c.key(k, path)
		if !ok {
			failed = errYAMLInvalid
			continue
		}
		p := append(path, key)
		if line, dup := lines[key]; dup {
			c.ps.add(pointer(p), "line %d: the key %q is already set on line %d", k.Line, key, line)
			failed = errYAMLInvalid
			continue
		}
		lines[key] = k.Line
		if len(lines) > 1 {
			c.out.WriteByte(',')
		}
		c.string(key)
		c.out.WriteByte(':')
		d, err := c.write(v, p, depth+1)
		if err == errYAMLStop {
			return 0, err
		}
		if err != nil {
			failed = err
		}
		deepest = max(deepest, d)
	}
	c.out.WriteByte('}')
	return deepest + 1, failed
}

// key returns the string a mapping key is, or adds why it is not one.
func (c *yamlConverter) key(k *yaml.Node, path []string) (string, bool) {
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		c.ps.add(pointer(path), "line %d: a key must be a string, not a %s", k.Line, yamlKindName(k))
		return "", false
	}
	switch tag := k.ShortTag(); tag {
	case "!!str", "!!timestamp":
		return k.Value, true
	case "!!merge":
		c.ps.add(pointer(append(path, k.Value)), "line %d: merge keys (<<) have no JSON equivalent; write the keys out, or alias the whole mapping", k.Line)
	case "!!int", "!!float", "!!bool", "!!null":
		c.ps.add(pointer(append(path, k.Value)), "line %d: the key %s is %s, not a string; quote it", k.Line, k.Value, yamlTagName(tag))
	default:
		c.ps.add(pointer(append(path, k.Value)), "line %d: the key %s is tagged %s; a key must be a string", k.Line, k.Value, tag)
	}
	return "", false
}

func (c *yamlConverter) sequence(n *yaml.Node, path []string, depth int) (int, error) {
	if tag := n.ShortTag(); tag != "!!seq" {
		c.ps.add(pointer(path), "line %d: the tag %s has no JSON equivalent", n.Line, tag)
		return 0, errYAMLInvalid
	}
	if err := c.tooDeep(n, path, depth); err != nil {
		return 0, err
	}
	var failed error
	deepest := 0
	c.out.WriteByte('[')
	for i, v := range n.Content {
		if i > 0 {
			c.out.WriteByte(',')
		}
		d, err := c.write(v, append(path, strconv.Itoa(i)), depth+1)
		if err == errYAMLStop {
			return 0, err
		}
		if err != nil {
			failed = err
		}
		deepest = max(deepest, d)
	}
	c.out.WriteByte(']')
	return deepest + 1, failed
}

// jsonNumberSyntax is the syntax of a JSON number.
var jsonNumberSyntax = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

func (c *yamlConverter) scalar(n *yaml.Node, path []string) error {
	tag := n.ShortTag()
	switch tag {
	case "!!str", "!!timestamp":
		c.string(n.Value)
		return nil
	case "!!null":
		c.out.WriteString("null")
		return nil
	case "!!bool", "!!int", "!!float":
	default:
		c.ps.add(pointer(path), "line %d: the tag %s has no JSON equivalent", n.Line, tag)
		return errYAMLInvalid
	}
	var v any
	if err := n.Decode(&v); err != nil {
		c.ps.add(pointer(path), "line %d: %s", n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
		return errYAMLInvalid
	}
	var s string
	switch v := v.(type) {
	case bool:
		s = strconv.FormatBool(v)
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case uint64:
		s = strconv.FormatUint(v, 10)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			c.ps.add(pointer(path), "line %d: %s is not a number JSON can hold", n.Line, n.Value)
			return errYAMLInvalid
		}
		s = strconv.FormatFloat(v, 'g', -1, 64)
	default:
		c.ps.add(pointer(path), "line %d: %s has no JSON equivalent", n.Line, n.Value)
		return errYAMLInvalid
	}
	if jsonNumberSyntax.MatchString(n.Value) {
		// Written as JSON would write it: keep every digit.
		s = n.Value
	}
	c.out.WriteString(s)
	return nil
}

// string writes s as a JSON string.
func (c *yamlConverter) string(s string) {
	_ = c.enc.Encode(s)             // encoding a string to a bytes.Buffer cannot fail
	c.out.Truncate(c.out.Len() - 1) // Encode ends with a newline
}

func yamlKindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	}
	return "node"
}

// yamlTagName says in words what a number's, boolean's or null's tag means.
func yamlTagName(tag string) string {
	switch tag {
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a number"
}
