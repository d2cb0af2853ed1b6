package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/seal"
)

// Fuzz targets for the configuration an operator writes: the YAML file,
// the environment, and the secret key's encodings. Seeds are in
// testdata/fuzz; `make fuzz` runs each for a few seconds.

// fuzzSecret is planted as the SMTP password and the secret key (37 bytes,
// unpadded base64).
const fuzzSecret = "Zm9vYmFyLXNlY3JldC1rZXktbWF0ZXJpYWwtMTIzNDU2Nzg5MA"

// FuzzLoadConfig: any file and environment value loads or fails with an
// error, never a panic; Validate never panics, never repeats a secret,
// and what it accepts is usable as the server uses it.
func FuzzLoadConfig(f *testing.F) {
	var envs []string
	(&Config{}).fields(func(sf reflect.StructField, _ reflect.Value) { envs = append(envs, sf.Tag.Get("env")) })
	example, err := os.ReadFile("../../deploy/twofold.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, uint8(0), "") // every setting, as documented
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file []byte, env uint8, value string) {
		path := filepath.Join(dir, "twofold.yaml")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		name := envs[int(env&0x7f)%len(envs)]
		getenv := func(k string) string {
			switch k {
			case name:
				return value
			case "TWOFOLD_SECRET_KEY":
				return fuzzSecret
			}
			return ""
		}
		cfg, err := LoadConfig(path, getenv)
		if err != nil {
			return
		}
		cfg.Dev = env&0x80 != 0
		if err := cfg.Validate(); err != nil {
			for _, secret := range secretsOf(cfg) {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("validation error repeats a secret: %v", err)
				}
			}
			return
		}
		checkUsable(t, cfg)
	})
}

// smtpPassword finds the password of an SMTP URL, even one url.Parse refuses.
var smtpPassword = regexp.MustCompile(`^[^:]*://[^:/@]*:(.*)@`)

// secretsOf are the secrets in cfg long enough to recognize, unless a
// setting that is not secret holds them too (an error may repeat that one).
func secretsOf(cfg *Config) []string {
	var secrets []string
	if m := smtpPassword.FindStringSubmatch(cfg.SMTPURL); m != nil {
		secrets = append(secrets, m[1])
	}
	if cfg.SecretKey != "" {
		secrets = append(secrets, strings.TrimSpace(cfg.SecretKey))
	}
	var out []string
	for _, s := range secrets {
		public := len(s) < 8
		cfg.fields(func(sf reflect.StructField, v reflect.Value) {
			if sf.Tag.Get("secret") == "" && strings.Contains(fmt.Sprint(v.Interface()), s) {
				public = true
			}
		})
		if !public {
			out = append(out, s)
		}
	}
	return out
}

// checkUsable fails unless cfg can be used as buildServer and serve use
// it, with the checks they skip because Validate made them.
func checkUsable(t *testing.T, cfg *Config) {
	t.Helper()
	u := cfg.issuerURL()
	if u == nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
		t.Fatalf("issuer %q accepted", cfg.Issuer)
	}
	if _, err := cfg.trustedProxies(); err != nil {
		t.Fatalf("trusted proxies %q accepted: %v", cfg.TrustedProxies, err)
	}
	if _, err := parseLevel(cfg.LogLevel); err != nil {
		t.Fatalf("log level %q accepted", cfg.LogLevel)
	}
	if cfg.SecretKey != "" {
		if _, err := decodeSecretKey(cfg.SecretKey); err != nil {
			t.Fatalf("secret key accepted: %v", err)
		}
	}
	if cfg.SMTPURL != "" {
		if _, err := mail.ParseSMTPURL(cfg.SMTPURL); err != nil {
			t.Fatalf("smtp url accepted: %v", err)
		}
	}
	if cfg.AuthorizeCodeLifespan <= 0 || cfg.AuthorizeCodeLifespan > 10*time.Minute || cfg.AccessTokenLifespan <= 0 || cfg.LoginFlowLifespan <= 0 {
		t.Fatalf("lifespans accepted: %+v", cfg)
	}
	newLogger(cfg, &bytes.Buffer{}).Info("ok")
}

// FuzzDecodeSecretKey: any string decodes to at least seal.MinSecretKeyLen
// bytes or fails, never panics, and its error never repeats it; and every
// key of that length, hex or base64 in any of its four forms, decodes back
// to itself.
func FuzzDecodeSecretKey(f *testing.F) {
	encodings := []func([]byte) string{hex.EncodeToString, base64.StdEncoding.EncodeToString, base64.RawStdEncoding.EncodeToString,
		base64.URLEncoding.EncodeToString, base64.RawURLEncoding.EncodeToString}
	f.Fuzz(func(t *testing.T, s string, key []byte, enc uint8) {
		got, err := decodeSecretKey(s)
		switch {
		case err == nil && len(got) < seal.MinSecretKeyLen:
			t.Fatalf("decodeSecretKey(%q) = %d bytes", s, len(got))
		case err != nil && len(s) >= 8 && strings.Contains(err.Error(), s):
			t.Fatalf("error repeats the key: %v", err)
		}
		if len(key) < seal.MinSecretKeyLen {
			return
		}
		encoded := encodings[int(enc)%len(encodings)](key)
		if _, err := hex.DecodeString(encoded); err == nil && enc%5 != 0 {
			return // base64 that is also hex is read as hex, as documented
		}
		if got, err := decodeSecretKey(encoded); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("%x encoded as %q decodes to %x, %v", key, encoded, got, err)
		}
	})
}
