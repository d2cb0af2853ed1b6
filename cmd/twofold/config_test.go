package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// envMap is a getenv over a fixed set of variables.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeConfigFile writes a YAML configuration file and returns its path.
func writeConfigFile(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "twofold.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertErrorMentions fails unless err is non-nil and its message holds
// every one of want.
func assertErrorMentions(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func randomKey(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestConfigDefaults: the defaults are the documented ones, validate in
// development mode, and outside it the missing secret key is reported.
func TestConfigDefaults(t *testing.T) {
	c, err := LoadConfig("", envMap(nil))
	if err != nil {
		t.Fatalf("load defaults: %v", err)
	}
	if c.Issuer != "http://localhost:8080" || c.Listen != "127.0.0.1:8080" || c.DataDir != "./data" ||
		c.AuthorizeCodeLifespan != 5*time.Minute || c.LogFormat != "text" || c.TrustedProxies != nil {
		t.Fatalf("defaults = %+v", c)
	}
	if got := c.databaseURL(); got != "sqlite:./data/twofold.db" {
		t.Errorf("default database URL = %q, want a SQLite file in ./data", got)
	}

	c.Dev = true
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults in development mode: %v", err)
	}
	c.Dev = false
	assertErrorMentions(t, c.Validate(), "secret_key or secret_key_file is required")

	c.SecretKeyFile = "/run/secrets/twofold"
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with a secret key file: %v", err)
	}
	c.SecretKey = base64.StdEncoding.EncodeToString(randomKey(32))
	assertErrorMentions(t, c.Validate(), "both set")
}

// TestConfigFileAndEnvironment: the file sets values, the environment
// overrides the file, and what neither sets keeps its default.
func TestConfigFileAndEnvironment(t *testing.T) {
	path := writeConfigFile(t, `
issuer: https://id.example.com
listen: 0.0.0.0:9000
access_token_lifespan: 30m
trusted_proxies: [10.0.0.0/8, 192.168.0.0/16]
log_format: json
brand_name: Example ID
`)
	c, err := LoadConfig(path, envMap(map[string]string{
		"TWOFOLD_LISTEN":          "127.0.0.1:9999",
		"TWOFOLD_TRUSTED_PROXIES": " 172.16.0.0/12 , ,::1/128",
		"TWOFOLD_LOG_LEVEL":       "debug",
		"TWOFOLD_BRAND_NAME":      "", // empty means unset: the file's value stays
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer from file", c.Issuer, "https://id.example.com"},
		{"listen from env over file", c.Listen, "127.0.0.1:9999"},
		{"duration from file", c.AccessTokenLifespan, 30 * time.Minute},
		{"list from env over file", c.TrustedProxies, []string{"172.16.0.0/12", "::1/128"}},
		{"log_format from file", c.LogFormat, "json"},
		{"log_level from env", c.LogLevel, "debug"},
		{"brand_name from file, empty env ignored", c.BrandName, "Example ID"},
		{"default kept", c.RefreshTokenLifespan, 720 * time.Hour},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string // "" means it loads
	}{
		{"empty file", "", ""},
		{"only a comment", "# nothing here\n", ""},
		{"unknown key", "issuer: https://id.example.com\nisuer: typo\n", "isuer"},
		{"dev is not a setting", "dev: true\n", "dev"},
		{"bad duration", "session_max_age: forever\n", "line 1"},
		{"not a mapping", "- a\n- b\n", "config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(writeConfigFile(t, tt.yaml), envMap(nil))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Issuer != "http://localhost:8080" {
					t.Fatalf("issuer = %q, want the default", c.Issuer)
				}
				return
			}
			assertErrorMentions(t, err, tt.wantErr)
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := LoadConfig(filepath.Join(t.TempDir(), "absent.yaml"), envMap(nil))
		assertErrorMentions(t, err, "read config")
	})
}

// TestConfigEnvironmentErrors: every malformed variable is reported, by
// name, in one error.
func TestConfigEnvironmentErrors(t *testing.T) {
	_, err := LoadConfig("", envMap(map[string]string{
		"TWOFOLD_ACCESS_TOKEN_LIFESPAN": "soon",
		"TWOFOLD_SESSION_MAX_AGE":       "24",
	}))
	assertErrorMentions(t, err, "TWOFOLD_ACCESS_TOKEN_LIFESPAN", `"soon"`, "TWOFOLD_SESSION_MAX_AGE", `"24"`)
}

// TestValidateReportsEveryProblem: one error names every bad setting.
func TestValidateReportsEveryProblem(t *testing.T) {
	c, err := LoadConfig("", envMap(map[string]string{
		"TWOFOLD_ISSUER":                  "ftp://id.example.com",
		"TWOFOLD_LISTEN":                  "8080",
		"TWOFOLD_DATABASE_URL":            "mysql://db/twofold",
		"TWOFOLD_SECRET_KEY":              base64.StdEncoding.EncodeToString(randomKey(16)),
		"TWOFOLD_SMTP_URL":                "http://mail.example.com",
		"TWOFOLD_AUTHORIZE_CODE_LIFESPAN": "11m",
		"TWOFOLD_ID_TOKEN_LIFESPAN":       "-1h",
		"TWOFOLD_TRUSTED_PROXIES":         "10.0.0.0/8,10.0.0.300/32",
		"TWOFOLD_LOG_FORMAT":              "xml",
		"TWOFOLD_LOG_LEVEL":               "loud",
		"TWOFOLD_BRAND_COLOR":             "red",
		"TWOFOLD_BRAND_LOGO_URL":          "http://cdn.example.com/logo.png",
	}))
	if err != nil {
		t.Fatal(err)
	}
	assertErrorMentions(t, c.Validate(),
		`issuer: "ftp://id.example.com" is not an absolute http(s) URL`,
		`listen: "8080" is not host:port`,
		"database_url: must start with",
		"secret_key: decodes to 16 bytes, need at least 32",
		"smtp_url:",
		"authorize_code_lifespan: 11m0s is longer than the 10m maximum",
		"id_token_lifespan: must be positive",
		`trusted_proxies: "10.0.0.300/32" is not a CIDR`,
		`log_format: "xml" is not text or json`,
		`log_level: "loud"`,
		`brand_color: "red" is not #rgb or #rrggbb`,
		"brand_logo_url:",
	)
}

func TestValidateIssuer(t *testing.T) {
	tests := []struct {
		issuer  string
		wantErr string // "" means valid
	}{
		{"https://id.example.com", ""},
		{"https://id.example.com:8443", ""},
		{"http://localhost:8080", ""},
		{"http://localhost", ""},
		{"http://127.0.0.1:5556", ""},
		{"http://127.9.9.9", ""},
		{"http://[::1]:8080", ""},
		{"http://id.example.com", "must be https"},
		{"http://10.0.0.1:8080", "must be https"},
		{"http://localhost.example.com", "must be https"},
		{"https://id.example.com/", "no path"},
		{"https://id.example.com/idp", "no path"},
		{"https://id.example.com?tenant=a", "no path"},
		{"https://id.example.com#x", "no path"},
		{"ftp://id.example.com", "not an absolute http(s) URL"},
		{"id.example.com", "not an absolute http(s) URL"},
		{"https://", "not an absolute http(s) URL"},
		{"", "not an absolute http(s) URL"},
	}
	for _, tt := range tests {
		name := tt.issuer
		if name == "" {
			name = "empty"
		}
		t.Run(name, func(t *testing.T) {
			c, err := LoadConfig("", envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			c.Dev, c.Issuer = true, tt.issuer
			err = c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want valid", err)
				}
				return
			}
			assertErrorMentions(t, err, "issuer:", tt.wantErr)
		})
	}
}

func TestDecodeSecretKey(t *testing.T) {
	key := randomKey(32)
	long := randomKey(48)
	tests := []struct {
		name    string
		in      string
		want    []byte // nil means refused
		wantErr string
	}{
		{"base64 std padded", base64.StdEncoding.EncodeToString(key), key, ""},
		{"base64 std unpadded", base64.RawStdEncoding.EncodeToString(key), key, ""},
		{"base64 url padded", base64.URLEncoding.EncodeToString(key), key, ""},
		{"base64 url unpadded", base64.RawURLEncoding.EncodeToString(key), key, ""},
		{"hex", hex.EncodeToString(key), key, ""},
		{"hex upper case", strings.ToUpper(hex.EncodeToString(key)), key, ""},
		{"longer key", base64.StdEncoding.EncodeToString(long), long, ""},
		{"trailing newline, as in a key file", base64.StdEncoding.EncodeToString(key) + "\n", key, ""},
		{"31 bytes base64", base64.StdEncoding.EncodeToString(key[:31]), nil, "decodes to 31 bytes, need at least 32"},
		{"31 bytes hex", hex.EncodeToString(key[:31]), nil, "decodes to 31 bytes"},
		{"a passphrase", "correct horse battery staple!", nil, "not base64 or hex"},
		{"garbage", "%%%%not a key%%%%", nil, "not base64 or hex"},
		{"empty", "", nil, "decodes to 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeSecretKey(tt.in)
			if tt.want == nil {
				assertErrorMentions(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("decoded %x, want %x", got, tt.want)
			}
		})
	}
}

// TestConfigTags: every setting carries what docs/configuration.md is
// generated from, its environment variable is TWOFOLD_-prefixed and unique,
// and the operator contract's variables exist with their documented
// defaults.
func TestConfigTags(t *testing.T) {
	rt := reflect.TypeFor[Config]()
	envs, keys := map[string]string{}, map[string]string{}
	for i := range rt.NumField() {
		f := rt.Field(i)
		env, hasEnv := f.Tag.Lookup("env")
		if !hasEnv {
			if f.Name != "Dev" {
				t.Errorf("%s has no env tag: every setting needs a variable", f.Name)
			}
			continue
		}
		yamlKey := f.Tag.Get("yaml")
		if yamlKey == "" || yamlKey == "-" || strings.Contains(yamlKey, ",") {
			t.Errorf("%s: yaml tag %q, want a plain key", f.Name, yamlKey)
		}
		if _, ok := f.Tag.Lookup("default"); !ok {
			t.Errorf("%s has no default tag (an empty one is fine)", f.Name)
		}
		if desc := f.Tag.Get("desc"); len(desc) < 10 || !strings.HasSuffix(desc, ".") {
			t.Errorf("%s: desc %q, want a sentence", f.Name, desc)
		}
		if !strings.HasPrefix(env, "TWOFOLD_") || env != strings.ToUpper(env) {
			t.Errorf("%s: env %q, want TWOFOLD_ and upper case", f.Name, env)
		}
		if want := "TWOFOLD_" + strings.ToUpper(yamlKey); env != want {
			t.Errorf("%s: env %q does not match yaml key %q (want %s)", f.Name, env, yamlKey, want)
		}
		if other, dup := envs[env]; dup {
			t.Errorf("%s and %s share env %s", other, f.Name, env)
		}
		if other, dup := keys[yamlKey]; dup {
			t.Errorf("%s and %s share yaml key %s", other, f.Name, yamlKey)
		}
		envs[env], keys[yamlKey] = f.Name, f.Name
	}

	contract := map[string]string{ // DESIGN.md, "Operator contract"
		"TWOFOLD_ISSUER":          "http://localhost:8080",
		"TWOFOLD_LISTEN":          "127.0.0.1:8080",
		"TWOFOLD_DATABASE_URL":    "",
		"TWOFOLD_SECRET_KEY":      "",
		"TWOFOLD_SECRET_KEY_FILE": "",
		"TWOFOLD_SMTP_URL":        "",
		"TWOFOLD_MAIL_FROM":       "twofold <no-reply@localhost>",
	}
	for _, env := range slices.Sorted(maps.Keys(contract)) {
		name, ok := envs[env]
		if !ok {
			t.Errorf("operator contract variable %s is not a setting", env)
			continue
		}
		f, _ := rt.FieldByName(name)
		if got := f.Tag.Get("default"); got != contract[env] {
			t.Errorf("%s default = %q, want %q", env, got, contract[env])
		}
	}
}
