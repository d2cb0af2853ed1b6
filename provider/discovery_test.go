package provider

import (
	"bytes"
	"flag"
	"net/url"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestDiscoveryGolden pins the discovery document: relying parties depend
// on every field of it.
func TestDiscoveryGolden(t *testing.T) {
	issuer, _ := url.Parse("https://id.example.com")
	got, err := discoveryDocument(issuer)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/discovery.golden.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("discovery document changed; if intended, run go test ./provider -update\ngot:\n%s", got)
	}
}
