package mfa

import (
	"encoding/base32"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is RFC 6238 Appendix B's SHA-1 key, "12345678901234567890".
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

// TestRFC6238Vectors checks the library against RFC 6238 Appendix B (8
// digits) and matchStep against the same codes cut to 6 digits.
func TestRFC6238Vectors(t *testing.T) {
	vectors := []struct {
		unix int64
		code string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	}
	for _, v := range vectors {
		at := time.Unix(v.unix, 0)
		got, err := totp.GenerateCodeCustom(rfcSecret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
		if err != nil || got != v.code {
			t.Errorf("T=%d: code %s, %v; want %s", v.unix, got, err, v.code)
		}
		s, ok := matchStep(rfcSecret, v.code[2:], at)
		if !ok || s != v.unix/30 {
			t.Errorf("T=%d: matchStep = %d, %v; want step %d", v.unix, s, ok, v.unix/30)
		}
	}
}

// TestSkewWindow: a code is good one step either side of its own, and no
// further; the step reported is the code's own.
func TestSkewWindow(t *testing.T) {
	codeAt := time.Unix(1111111111, 0) // step 37037037, which starts at 1111111110
	code := "050471"
	start := time.Unix(37037037*30, 0)
	cases := []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"first second of the step", start, true},
		{"last second of the step", start.Add(29 * time.Second), true},
		{"last second of the previous step", start.Add(-time.Second), true},
		{"first second two steps before", start.Add(-31 * time.Second), false},
		{"first second of the next step", start.Add(30 * time.Second), true},
		{"last second of the next step", start.Add(59 * time.Second), true},
		{"first second two steps later", start.Add(60 * time.Second), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := matchStep(rfcSecret, code, tc.at)
			if ok != tc.ok || (ok && s != codeAt.Unix()/30) {
				t.Fatalf("matchStep at %s = %d, %v; want ok=%v", tc.at, s, ok, tc.ok)
			}
		})
	}
	for _, bad := range []string{"", "05047", "0504711", "abcdef", "050472"} {
		if _, ok := matchStep(rfcSecret, bad, codeAt); ok {
			t.Errorf("matchStep accepted %q", bad)
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	cases := []struct {
		in, code   string
		backup, ok bool
	}{
		{"123456", "123456", false, true},
		{" 123 456 ", "123456", false, true},
		{"123-456", "123456", false, true},
		{"abcde-fghjk-mnpqr", "abcdefghjkmnpqr", true, true},
		{"ABCDE FGHJK MNPQR", "abcdefghjkmnpqr", true, true},
		{"abcdefghjkmnpqr", "abcdefghjkmnpqr", true, true},
		{"o1ilz-00000-11111", "0111z0000011111", true, true}, // o→0, i/l→1
		{"12345", "", false, false},
		{"1234567", "", false, false},
		{"12345a", "", false, false},            // six symbols but not digits
		{"١٢٣٤٥٦", "", false, false},            // Arabic-Indic digits
		{"12345\x00", "", false, false},         // NUL
		{"abcde-fghjk-mnpqu", "", false, false}, // u is not in the alphabet
		{"' OR 1=1 --", "", false, false},
	}
	for _, tc := range cases {
		code, backup, ok := normalizeCode(tc.in)
		if code != tc.code || backup != tc.backup || ok != tc.ok {
			t.Errorf("normalizeCode(%q) = %q, %v, %v; want %q, %v, %v", tc.in, code, backup, ok, tc.code, tc.backup, tc.ok)
		}
	}
}

func TestBackupCodeShape(t *testing.T) {
	codes, err := newBackupCodes(randReader(), BackupCodeCount)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		f := formatBackupCode(c)
		if len(c) != 15 || len(f) != 17 || f[5] != '-' || f[11] != '-' {
			t.Fatalf("code %q formatted %q", c, f)
		}
		if n, backup, ok := normalizeCode(f); !ok || !backup || n != c {
			t.Fatalf("formatted code %q does not read back: %q %v %v", f, n, backup, ok)
		}
		seen[c] = true
	}
	if len(seen) != BackupCodeCount {
		t.Fatalf("duplicate codes: %v", codes)
	}
}

func BenchmarkMatchStep(b *testing.B) {
	now := time.Unix(1111111111, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := matchStep(rfcSecret, "050471", now); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkNormalizeCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := normalizeCode("ABCDE FGHJK-MNPQR"); !ok {
			b.Fatal("not a code")
		}
	}
}
