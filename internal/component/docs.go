package component

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Markdown renders reference documentation for specs, so the page is
// generated from the same specs that validate flows.
func Markdown(title, intro string, specs []Spec) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", title, intro)
	for _, s := range specs {
		fmt.Fprintf(&b, "- [`%s`](#%s) (%s)\n", s.Type, anchor(s.Type), s.Kind)
	}
	for _, s := range specs {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", s.Type, s.Description)
		fmt.Fprintf(&b, "Kind: %s.", s.Kind)
		if len(s.InPorts) > 0 {
			fmt.Fprintf(&b, " Input ports: %s.", code(s.InPorts))
		}
		if len(s.OutPorts) > 0 {
			fmt.Fprintf(&b, " Output ports: %s.", code(s.OutPorts))
		}
		if s.IO {
			b.WriteString(" Runs as a durable job of its own (it does I/O).")
		} else if s.Kind == KindAction {
			b.WriteString(" Runs inline in the step before it (no I/O).")
		}
		b.WriteString("\n\n")
		if len(s.Properties) > 0 {
			b.WriteString("| property | type | required | default | description |\n|---|---|---|---|---|\n")
			for _, p := range s.Properties {
				req := ""
				if p.Required {
					req = "yes"
				}
				desc := p.Description
				if len(p.Enum) > 0 {
					desc += " One of " + code(p.Enum) + "."
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", p.Name, p.Type, req, jsonCell(p.Default), desc)
			}
			b.WriteString("\n")
		}
		if s.OutputSample != nil {
			fmt.Fprintf(&b, "Output sample:\n\n```json\n%s```\n", indentJSON(s.OutputSample))
		}
		if s.ExampleFlow != nil {
			fmt.Fprintf(&b, "\nExample flow:\n\n```json\n%s```\n", indentJSON(s.ExampleFlow))
		}
	}
	return b.Bytes()
}

// indentJSON renders v as indented JSON, leaving <, > and & as they are.
func indentJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return b.Bytes()
}

func anchor(s string) string { return strings.ToLower(strings.ReplaceAll(s, ".", "")) }

func code(items []string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = "`" + it + "`"
	}
	return strings.Join(out, ", ")
}

func jsonCell(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return "`" + string(b) + "`"
}
