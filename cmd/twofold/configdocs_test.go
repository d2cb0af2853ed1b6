package main

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var updateDocs = os.Getenv("UPDATE_DOCS") != ""

// configReference renders docs/configuration.md from Config's tags.
func configReference() []byte {
	var b bytes.Buffer
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from the `Config` struct in `cmd/twofold/config.go` by `UPDATE_DOCS=1 go test ./cmd/twofold -run TestConfigReference`;\n")
	b.WriteString("a test fails when the two disagree.\n\n")
	b.WriteString("Every setting can be given in the YAML file passed with `--config FILE` or as an environment variable;\n")
	b.WriteString("the environment wins over the file, the file over the default. Durations are written like `15m`, `2h`, `720h`.\n")
	b.WriteString("Invalid settings are all reported at once and twofold exits with status 1.\n\n")
	b.WriteString("| YAML key | Environment variable | Default | Meaning |\n|---|---|---|---|\n")
	var c Config
	c.fields(func(f reflect.StructField, _ reflect.Value) {
		def := f.Tag.Get("default")
		if def == "" {
			def = "(none)"
		}
		desc := f.Tag.Get("desc")
		if f.Tag.Get("secret") == "true" {
			desc += " Secret: prefer the environment or a file readable only by twofold."
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s |\n", f.Tag.Get("yaml"), f.Tag.Get("env"), def, desc)
	})
	b.WriteString("\n## Example `twofold.yaml`\n\n```yaml\n")
	c.fields(func(f reflect.StructField, v reflect.Value) {
		def := f.Tag.Get("default")
		if f.Type == reflect.TypeOf(time.Duration(0)) || def == "" {
			fmt.Fprintf(&b, "# %s: %s\n", f.Tag.Get("yaml"), quoteYAML(def))
			return
		}
		fmt.Fprintf(&b, "%s: %s\n", f.Tag.Get("yaml"), quoteYAML(def))
	})
	b.WriteString("```\n")
	fmt.Fprintf(&b, `
## Go runtime

Two variables of Go's own are read too. `+"`GOGC`"+` and `+"`GOMEMLIMIT`"+` tune the
garbage collector; when neither is set, `+"`twofold serve`"+` sets `+"`GOGC=%d`"+` and
a soft limit of %d MiB plus the password pool's argon2id memory (19 MiB per
core at the default parameters), because every password hash allocates its
work area afresh, and keeps that limit a tenth and %d MiB below the memory
limit of its container or systemd unit when it has one (see the
[operator guide](operator.md#at-larger-scale)). Setting either one leaves
both to you.
`, memoryGCPercent, memoryBase>>20, memoryOutside>>20)
	return b.Bytes()
}

func quoteYAML(s string) string {
	if s == "" {
		return `""`
	}
	return fmt.Sprintf("%q", s)
}

// exampleConfig renders deploy/twofold.example.yaml: every setting with its
// meaning and default, commented out where the default is what most want.
func exampleConfig() []byte {
	var b bytes.Buffer
	b.WriteString("# twofold configuration: every setting, with its default.\n")
	b.WriteString("# Generated from cmd/twofold/config.go (UPDATE_DOCS=1 go test ./cmd/twofold -run TestConfigReference).\n")
	b.WriteString("# Each setting can also be given as the environment variable named above it, which wins over this file.\n")
	var c Config
	c.fields(func(f reflect.StructField, _ reflect.Value) {
		fmt.Fprintf(&b, "\n# %s\n# env: %s\n", f.Tag.Get("desc"), f.Tag.Get("env"))
		fmt.Fprintf(&b, "# %s: %s\n", f.Tag.Get("yaml"), quoteYAML(f.Tag.Get("default")))
	})
	return b.Bytes()
}

// TestExampleConfig keeps deploy/twofold.example.yaml in step with Config,
// and checks that it loads.
func TestExampleConfig(t *testing.T) {
	const path = "../../deploy/twofold.example.yaml"
	checkGenerated(t, path, exampleConfig(), "TestExampleConfig")
	if _, err := LoadConfig(path, func(string) string { return "" }); err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
}

// TestConfigReference keeps docs/configuration.md in step with Config.
func TestConfigReference(t *testing.T) {
	checkGenerated(t, "../../docs/configuration.md", configReference(), "TestConfigReference")
}

// checkGenerated fails when the file at path (relative to this package)
// differs from got, the output of its generator; with UPDATE_DOCS=1 it
// writes got there first. test is the test to run to regenerate it.
func checkGenerated(t *testing.T, path string, got []byte, test string) {
	t.Helper()
	if updateDocs {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date: run UPDATE_DOCS=1 go test ./cmd/twofold -run %s", strings.TrimPrefix(path, "../../"), test)
	}
}
