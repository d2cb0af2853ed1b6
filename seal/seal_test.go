package seal

import (
	"bytes"
	"errors"
	"testing"
)

func newSealer(t *testing.T, b byte) *Sealer {
	t.Helper()
	s, err := New(bytes.Repeat([]byte{b}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s := newSealer(t, 1)
	sealed, err := s.Seal("totp", []byte("JBSWY3DPEHPK3PXP"), []byte("user-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := s.Open("totp", sealed, []byte("user-1"))
	if err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := s.Seal("totp", []byte("JBSWY3DPEHPK3PXP"), []byte("user-1"))
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
}

func TestOpenRefuses(t *testing.T) {
	s := newSealer(t, 1)
	sealed, _ := s.Seal("totp", []byte("secret"), []byte("user-1"))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]struct {
		s       *Sealer
		purpose string
		sealed  []byte
		ad      string
	}{
		"other associated data": {s, "totp", sealed, "user-2"},
		"other purpose":         {s, "signing-key", sealed, "user-1"},
		"other secret key":      {newSealer(t, 2), "totp", sealed, "user-1"},
		"tampered":              {s, "totp", flipped, "user-1"},
		"truncated":             {s, "totp", sealed[:10], "user-1"},
		"empty":                 {s, "totp", nil, "user-1"},
		"unknown version":       {s, "totp", append([]byte{9}, sealed[1:]...), "user-1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.s.Open(tc.purpose, tc.sealed, []byte(tc.ad)); !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %v, want ErrOpen", err)
			}
		})
	}
}

func TestMACIsKeyedAndSeparated(t *testing.T) {
	a, b := newSealer(t, 1), newSealer(t, 2)
	m := a.MAC("client-secret", []byte("s3cret"))
	if !Equal(m, a.MAC("client-secret", []byte("s3cret"))) {
		t.Fatal("MAC is not deterministic")
	}
	for name, other := range map[string][]byte{
		"other key":     b.MAC("client-secret", []byte("s3cret")),
		"other purpose": a.MAC("session", []byte("s3cret")),
		"other data":    a.MAC("client-secret", []byte("s3cret!")),
	} {
		if Equal(m, other) {
			t.Errorf("%s gives the same MAC", name)
		}
	}
}

func TestNewRefusesShortKeys(t *testing.T) {
	if _, err := New(make([]byte, 31), nil); err == nil {
		t.Fatal("accepted a 31-byte secret key")
	}
}
