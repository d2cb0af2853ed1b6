package main

import (
	"encoding/json"
	"io"
	"net/url"
	"testing"
)

func decodeJSON(t *testing.T, r io.Reader, v any) {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
}

// headerKID returns the kid of a compact JWS.
func headerKID(t *testing.T, jws string) string { return jwtHeader(t, jws).KID }

// headerAlg returns the alg of a compact JWS's header.
func headerAlg(t *testing.T, jws string) string { return jwtHeader(t, jws).Alg }

// url1 is a one-field form.
func url1(k, v string) url.Values { return url.Values{k: {v}} }
