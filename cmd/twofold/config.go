package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/templates"
)

// Config is every setting of twofold. Each field has a YAML key (yaml tag),
// an environment variable (env tag), a default (default tag) and a
// description (desc tag); docs/configuration.md is generated from these
// tags and a test keeps the two in step. Environment variables override the
// file; the file overrides defaults.
type Config struct {
	Issuer        string `yaml:"issuer" env:"TWOFOLD_ISSUER" default:"http://localhost:8080" desc:"Public base URL of twofold; the OpenID Connect issuer. Must be https except on localhost."`
	Listen        string `yaml:"listen" env:"TWOFOLD_LISTEN" default:"127.0.0.1:8080" desc:"Address the HTTP server listens on."`
	DataDir       string `yaml:"data_dir" env:"TWOFOLD_DATA_DIR" default:"./data" desc:"Directory for the embedded database and, in development mode, the generated secret key."`
	DatabaseURL   string `yaml:"database_url" env:"TWOFOLD_DATABASE_URL" default:"" desc:"postgres://user:pass@host:5432/db or sqlite:PATH. Empty means sqlite:<data_dir>/twofold.db."`
	SecretKey     string `yaml:"secret_key" env:"TWOFOLD_SECRET_KEY" default:"" secret:"true" desc:"At least 32 random bytes, base64 or hex. Seals signing keys and TOTP secrets and keys every stored hash. Set this or secret_key_file."`
	SecretKeyFile string `yaml:"secret_key_file" env:"TWOFOLD_SECRET_KEY_FILE" default:"" desc:"File holding the secret key. In development mode it is generated under data_dir when neither is set."`
	SMTPURL       string `yaml:"smtp_url" env:"TWOFOLD_SMTP_URL" default:"" secret:"true" desc:"smtp://user:pass@host:587 (STARTTLS when offered) or smtps://user:pass@host:465 (implicit TLS). Empty: mail goes to the development outbox (/dev/mail, development mode only)."`
	MailFrom      string `yaml:"mail_from" env:"TWOFOLD_MAIL_FROM" default:"twofold <no-reply@localhost>" desc:"From address of the mail twofold sends."`

	AccessTokenLifespan   time.Duration `yaml:"access_token_lifespan" env:"TWOFOLD_ACCESS_TOKEN_LIFESPAN" default:"1h" desc:"Lifetime of access tokens (opaque; revocable at once)."`
	RefreshTokenLifespan  time.Duration `yaml:"refresh_token_lifespan" env:"TWOFOLD_REFRESH_TOKEN_LIFESPAN" default:"720h" desc:"Lifetime of refresh tokens; each use rotates them."`
	IDTokenLifespan       time.Duration `yaml:"id_token_lifespan" env:"TWOFOLD_ID_TOKEN_LIFESPAN" default:"1h" desc:"Lifetime of ID tokens. A rotated-out signing key stays published this long."`
	AuthorizeCodeLifespan time.Duration `yaml:"authorize_code_lifespan" env:"TWOFOLD_AUTHORIZE_CODE_LIFESPAN" default:"5m" desc:"Lifetime of authorization codes; at most 10m."`
	SessionIdleTimeout    time.Duration `yaml:"session_idle_timeout" env:"TWOFOLD_SESSION_IDLE_TIMEOUT" default:"8h" desc:"A browser session unused this long ends."`
	SessionMaxAge         time.Duration `yaml:"session_max_age" env:"TWOFOLD_SESSION_MAX_AGE" default:"24h" desc:"A browser session ends this long after sign-in however active."`
	LoginFlowLifespan     time.Duration `yaml:"login_flow_lifespan" env:"TWOFOLD_LOGIN_FLOW_LIFESPAN" default:"15m" desc:"How long a user may take to sign in."`
	ResetLinkLifespan     time.Duration `yaml:"reset_link_lifespan" env:"TWOFOLD_RESET_LINK_LIFESPAN" default:"24h" desc:"How long the link emailed after an owner resets a member's 2FA works."`

	WebAuthnOrigins []string `yaml:"webauthn_origins" env:"TWOFOLD_WEBAUTHN_ORIGINS" default:"" desc:"Extra origins (comma-separated, like https://login.example.com) allowed to use security keys besides the issuer's own. The relying party id is always the issuer's host."`
	TrustedProxies  []string `yaml:"trusted_proxies" env:"TWOFOLD_TRUSTED_PROXIES" default:"" desc:"Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed (for rate limits and audit)."`
	MetricsNetworks []string `yaml:"metrics_allowed_networks" env:"TWOFOLD_METRICS_ALLOWED_NETWORKS" default:"127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7" desc:"Comma-separated CIDRs whose clients may read /metrics (Prometheus); everyone else gets 404."`
	PprofListen     string   `yaml:"pprof_listen" env:"TWOFOLD_PPROF_LISTEN" default:"" desc:"If set (e.g. 127.0.0.1:6060), serve Go's profiler (net/http/pprof) there, separate from the main listener. Off by default; never expose it publicly."`
	LogFormat       string   `yaml:"log_format" env:"TWOFOLD_LOG_FORMAT" default:"text" desc:"Log format: text or json."`
	LogLevel        string   `yaml:"log_level" env:"TWOFOLD_LOG_LEVEL" default:"info" desc:"Log level: debug, info, warn or error."`
	TemplatesDir    string   `yaml:"templates_dir" env:"TWOFOLD_TEMPLATES_DIR" default:"" desc:"Directory whose pages/*.html and mail/*.{txt,html} replace the embedded ones of the same name."`
	BrandName       string   `yaml:"brand_name" env:"TWOFOLD_BRAND_NAME" default:"twofold" desc:"Product name shown on pages and in mail."`
	BrandLogoURL    string   `yaml:"brand_logo_url" env:"TWOFOLD_BRAND_LOGO_URL" default:"" desc:"Logo shown beside the product name: a path on twofold's own host (the pages allow no images from elsewhere)."`
	BrandColor      string   `yaml:"brand_color" env:"TWOFOLD_BRAND_COLOR" default:"" desc:"Accent color as #rgb or #rrggbb."`

	// Dev is set by serve --dev, never by file or environment.
	Dev bool `yaml:"-"`
}

// fields walks the settings of Config in declaration order.
func (c *Config) fields(fn func(f reflect.StructField, v reflect.Value)) {
	rv := reflect.ValueOf(c).Elem()
	for i := range rv.NumField() {
		if f := rv.Type().Field(i); f.Tag.Get("env") != "" {
			fn(f, rv.Field(i))
		}
	}
}

// LoadConfig builds the configuration from defaults, the YAML file (if
// path is not ""), and the environment, in that order of precedence
// (lowest first). It reports every malformed value at once.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	c := &Config{}
	var problems []error
	c.fields(func(f reflect.StructField, v reflect.Value) {
		if err := setValue(v, f.Tag.Get("default")); err != nil {
			problems = append(problems, fmt.Errorf("default of %s: %w", f.Name, err))
		}
	})
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file sets nothing
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	c.fields(func(f reflect.StructField, v reflect.Value) {
		env := f.Tag.Get("env")
		if raw := getenv(env); raw != "" {
			if err := setValue(v, raw); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return c, nil
}

// setValue parses raw into v by v's type.
func setValue(v reflect.Value, raw string) error {
	switch v.Interface().(type) {
	case string:
		v.SetString(raw)
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 15m or 2h", raw)
		}
		v.SetInt(int64(d))
	case []string:
		var l []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				l = append(l, s)
			}
		}
		v.Set(reflect.ValueOf(l))
	case bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

// Validate reports every problem in the configuration at once.
func (c *Config) Validate() error {
	var p []error
	add := func(format string, args ...any) { p = append(p, fmt.Errorf(format, args...)) }

	if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		add("issuer: %q is not an absolute http(s) URL", c.Issuer)
	} else {
		if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/") || u.Path != "" {
			add("issuer: %q must have no path, query, fragment or trailing slash", c.Issuer)
		}
		if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			add("issuer: %q must be https (plain http is allowed only for localhost)", c.Issuer)
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port", c.Listen)
	}
	if d := c.databaseURL(); !strings.HasPrefix(d, "postgres://") && !strings.HasPrefix(d, "postgresql://") && !strings.HasPrefix(d, "sqlite:") {
		add("database_url: must start with postgres://, postgresql:// or sqlite:")
	}
	if c.SecretKey != "" && c.SecretKeyFile != "" {
		add("secret_key and secret_key_file are both set; set one")
	} else if c.SecretKey == "" && c.SecretKeyFile == "" && !c.Dev {
		add("secret_key or secret_key_file is required (generate one with: openssl rand -base64 32)")
	} else if c.SecretKey != "" {
		if _, err := decodeSecretKey(c.SecretKey); err != nil {
			add("secret_key: %v", err)
		}
	}
	if c.SMTPURL != "" {
		if _, err := mail.ParseSMTPURL(c.SMTPURL); err != nil {
			add("smtp_url: %v", err)
		}
	}
	if _, err := netmail.ParseAddress(c.MailFrom); err != nil {
		add("mail_from: %q is not an address like \"twofold <no-reply@example.com>\"", c.MailFrom)
	}
	for name, d := range map[string]time.Duration{"access_token_lifespan": c.AccessTokenLifespan, "refresh_token_lifespan": c.RefreshTokenLifespan,
		"id_token_lifespan": c.IDTokenLifespan, "authorize_code_lifespan": c.AuthorizeCodeLifespan, "session_idle_timeout": c.SessionIdleTimeout,
		"session_max_age": c.SessionMaxAge, "login_flow_lifespan": c.LoginFlowLifespan, "reset_link_lifespan": c.ResetLinkLifespan} {
		if d <= 0 {
			add("%s: must be positive", name)
		}
	}
	if c.AuthorizeCodeLifespan > 10*time.Minute {
		add("authorize_code_lifespan: %s is longer than the 10m maximum", c.AuthorizeCodeLifespan)
	}
	for _, o := range c.WebAuthnOrigins {
		if u, err := url.Parse(o); err != nil || u.Host == "" || u.Path != "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			add("webauthn_origins: %q is not an origin like https://login.example.com", o)
		}
	}
	if _, err := c.trustedProxies(); err != nil {
		add("trusted_proxies: %v", err)
	}
	if _, err := parsePrefixes(c.MetricsNetworks); err != nil {
		add("metrics_allowed_networks: %v", err)
	}
	if c.PprofListen != "" {
		if _, _, err := net.SplitHostPort(c.PprofListen); err != nil {
			add("pprof_listen: %q is not host:port", c.PprofListen)
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("log_format: %q is not text or json", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		add("log_level: %v", err)
	}
	if c.BrandColor != "" && !templates.ValidColor(c.BrandColor) {
		add("brand_color: %q is not #rgb or #rrggbb", c.BrandColor)
	}
	if c.BrandLogoURL != "" && (!strings.HasPrefix(c.BrandLogoURL, "/") || strings.HasPrefix(c.BrandLogoURL, "//")) {
		// Pages allow images from their own origin only (CSP img-src 'self').
		add("brand_logo_url: must be a path on twofold's own host, like /static/logo.svg (served from templates_dir)")
	}
	return errors.Join(p...)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func (c *Config) databaseURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return "sqlite:" + strings.TrimSuffix(c.DataDir, "/") + "/twofold.db"
}

func (c *Config) issuerURL() *url.URL {
	u, _ := url.Parse(c.Issuer) // validated
	return u
}

func (c *Config) trustedProxies() ([]netip.Prefix, error) { return parsePrefixes(c.TrustedProxies) }

func parsePrefixes(l []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range l {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8", s)
		}
		out = append(out, p)
	}
	return out, nil
}

// decodeSecretKey accepts hex (as openssl rand -hex 32 prints) or base64
// (standard or URL, padded or not), of at least 32 bytes. A string of hex
// digits is read as hex; random base64 of 32 bytes is never all hex digits.
func decodeSecretKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var key []byte
	if b, err := hex.DecodeString(s); err == nil {
		key = b
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key != nil {
			break
		}
		if b, err := enc.DecodeString(s); err == nil {
			key = b
		}
	}
	if key == nil {
		return nil, errors.New("not base64 or hex")
	}
	if len(key) < seal.MinSecretKeyLen {
		return nil, fmt.Errorf("decodes to %d bytes, need at least %d", len(key), seal.MinSecretKeyLen)
	}
	return key, nil
}
