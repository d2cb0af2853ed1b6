package mail_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twofold-id/twofold/mail"
)

func TestParseSMTPURL(t *testing.T) {
	good := []struct {
		name, url string
		want      mail.SMTPConfig
	}{
		{"starttls default port", "smtp://mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 587}},
		{"starttls port", "smtp://mail.example.com:25", mail.SMTPConfig{Host: "mail.example.com", Port: 25}},
		{"trailing slash", "smtp://mail.example.com/", mail.SMTPConfig{Host: "mail.example.com", Port: 587}},
		{"upper-case scheme", "SMTP://mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 587}},
		{"implicit tls default port", "smtps://mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 465, ImplicitTLS: true}},
		{"implicit tls port", "smtps://mail.example.com:2465", mail.SMTPConfig{Host: "mail.example.com", Port: 2465, ImplicitTLS: true}},
		{"credentials", "smtp://user:pass@mail.example.com:587",
			mail.SMTPConfig{Host: "mail.example.com", Port: 587, Username: "user", Password: "pass"}},
		{"percent-encoded credentials", "smtps://us%40er:p%3As%2Fs%20w@mail.example.com",
			mail.SMTPConfig{Host: "mail.example.com", Port: 465, ImplicitTLS: true, Username: "us@er", Password: "p:s/s w"}},
		{"empty password", "smtp://user:@mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 587, Username: "user"}},
		{"ipv6", "smtp://[::1]:2525", mail.SMTPConfig{Host: "::1", Port: 2525}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mail.ParseSMTPURL(tc.url)
			if err != nil {
				t.Fatalf("ParseSMTPURL(%q): %v", tc.url, err)
			}
			if got != tc.want {
				t.Fatalf("ParseSMTPURL(%q) = %+v, want %+v", tc.url, got, tc.want)
			}
		})
	}

	bad := []struct{ name, url, says string }{
		{"empty", "", "scheme"},
		{"no scheme", "mail.example.com:587", "scheme"},
		{"http", "http://mail.example.com", "scheme"},
		{"no host", "smtp://", "no host"},
		{"port only", "smtp://:25", "no host"},
		{"opaque", "smtp:mail.example.com", "no host"},
		{"port zero", "smtp://mail.example.com:0", "port"},
		{"port too big", "smtp://mail.example.com:65536", "port"},
		{"port not a number", "smtp://user:s3cret@mail.example.com:smtp", "port"},
		{"user without password", "smtp://user@mail.example.com", "no password"},
		{"password without user", "smtp://:s3cret@mail.example.com", "user name is empty"},
		{"path", "smtp://mail.example.com/relay", "without path"},
		{"query", "smtp://user:s3cret@mail.example.com?tls=off", "without path"},
		{"fragment", "smtp://mail.example.com#x", "without path"},
		{"space in password", "smtp://user:s3 cret@mail.example.com", "userinfo"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mail.ParseSMTPURL(tc.url)
			if !errors.Is(err, mail.ErrBadSMTPURL) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("ParseSMTPURL(%q) = %v, want ErrBadSMTPURL saying %q", tc.url, err, tc.says)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "s3 cret") {
				t.Fatalf("error repeats the password: %v", err)
			}
		})
	}
}

func TestSMTPConfigStringHidesPassword(t *testing.T) {
	c, err := mail.ParseSMTPURL("smtps://user:s3cret@mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String(); got != "smtps://user@mail.example.com:465" {
		t.Fatalf("String() = %q", got)
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	err := mail.SMTPConfig{Port: 70000, From: "not an address"}.Validate()
	for _, want := range []string{"host is empty", "port 70000", "sender address"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	ok := mail.SMTPConfig{Host: "mail.example.com", Port: 587, From: "twofold <noreply@example.com>"}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
}
