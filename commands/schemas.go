package commands

import (
	"embed"
	"fmt"
	"slices"
	"strings"
)

// schemaFiles holds one JSON Schema (draft 2020-12) per command name, in
// schemas/<name>.schema.json. They describe the bodies Decode accepts; the
// tests keep the two in agreement.
//
//go:embed schemas/*.schema.json
var schemaFiles embed.FS

// Schema returns the JSON Schema of the body of the command named name, so
// that tooling can serve it and publishers can validate against it.
func Schema(name string) ([]byte, error) {
	if !slices.Contains(Names, name) {
		return nil, fmt.Errorf("no schema for command %q; want one of %s", name, strings.Join(Names, ", "))
	}
	b, err := schemaFiles.ReadFile(schemaPath(name))
	if err != nil {
		return nil, fmt.Errorf("read schema of %s: %w", name, err)
	}
	return b, nil
}

func schemaPath(name string) string { return "schemas/" + name + ".schema.json" }
