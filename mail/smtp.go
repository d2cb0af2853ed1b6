package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/twofold-id/twofold/store"
)

// ErrBadSMTPURL is returned, wrapped with the reason, by ParseSMTPURL.
var ErrBadSMTPURL = errors.New("mail: bad SMTP URL")

// Default ports: submission with STARTTLS for smtp://, implicit TLS for
// smtps:// (RFC 8314).
const (
	DefaultSMTPPort  = 587
	DefaultSMTPSPort = 465
)

// SMTPConfig says how to reach the SMTP server. ParseSMTPURL fills all but
// From, RootCAs and Timeout.
type SMTPConfig struct {
	Host string
	Port int
	// ImplicitTLS speaks TLS from the first byte (smtps://). Otherwise the
	// connection is upgraded with STARTTLS whenever the server offers it
	// (smtp://); a server that offers it but fails the handshake or
	// presents a certificate that does not verify gets nothing, never a
	// plain-text retry.
	ImplicitTLS bool
	// Username and Password, when Username is set, log in with PLAIN, or
	// LOGIN when the server offers only that. go-mail sends these
	// credentials only over TLS or to a loopback server, never in the clear
	// over a network.
	Username string
	Password string
	// From is the sender, "twofold <noreply@example.com>" or a bare address.
	From string
	// RootCAs verifies the server's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// Timeout bounds each step of the conversation (default 15 s); the
	// Worker also bounds the conversation as a whole.
	Timeout time.Duration
}

// ParseSMTPURL reads smtp://[user:password@]host[:port] (STARTTLS when the
// server offers it, port 587 by default) or smtps://… (implicit TLS, port
// 465 by default). User name and password are percent-decoded. Errors wrap
// ErrBadSMTPURL and never repeat the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	bad := func(format string, args ...any) (SMTPConfig, error) {
		return SMTPConfig{}, fmt.Errorf("%w: "+format, append([]any{ErrBadSMTPURL}, args...)...)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included; keep only
		// its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("%v", err)
	}
	var c SMTPConfig
	switch u.Scheme {
	case "smtp":
		c.Port = DefaultSMTPPort
	case "smtps":
		c.Port, c.ImplicitTLS = DefaultSMTPSPort, true
	default:
		return bad("scheme must be smtp:// or smtps://, got %q", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return bad("no host: want %s://host[:port]", u.Scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return bad("only %s://[user:password@]host[:port] is understood, without path, query or fragment", u.Scheme)
	}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %q is not between 1 and 65535", p)
		}
		c.Port = n
	}
	if u.User != nil {
		pass, ok := u.User.Password()
		switch {
		case u.User.Username() == "":
			return bad("user name is empty")
		case !ok:
			return bad("user %q has no password (user:password@host)", u.User.Username())
		}
		c.Username, c.Password = u.User.Username(), pass
	}
	return c, nil
}

// String describes the server without the password.
func (c SMTPConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if c.Username != "" {
		u.User = url.User(c.Username)
	}
	return u.String()
}

// Validate reports every problem with c at once.
func (c SMTPConfig) Validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("mail: SMTP host is empty"))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("mail: SMTP port %d is not between 1 and 65535", c.Port))
	}
	if c.From == "" {
		errs = append(errs, errors.New("mail: sender address (From) is empty"))
	} else if _, err := netmail.ParseAddress(c.From); err != nil {
		errs = append(errs, fmt.Errorf("mail: sender address %q: %w", c.From, err))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("mail: SMTP timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// send delivers m in one SMTP conversation that ends when ctx does.
func (c SMTPConfig) send(ctx context.Context, m store.Mail) error {
	msg, err := c.message(m)
	if err != nil {
		return err
	}
	client, err := gomail.NewClient(c.Host, c.options(ctx)...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	return client.DialAndSendWithContext(ctx, msg)
}

func (c SMTPConfig) options(ctx context.Context) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(c.Port),
		gomail.WithDialContextFunc(c.dialer(ctx)),
		gomail.WithTLSConfig(c.tlsConfig()),
		// WithPort without WithTLSPortPolicy: never fall back to port 25.
		gomail.WithTLSPolicy(gomail.TLSOpportunistic),
	}
	if c.ImplicitTLS {
		opts = append(opts, gomail.WithSSL())
	}
	if c.Timeout > 0 {
		opts = append(opts, gomail.WithTimeout(c.Timeout))
	}
	if c.Username != "" {
		// PLAIN and LOGIN refuse to run without TLS unless the server is on
		// loopback, so a stripped STARTTLS cannot expose the password.
		opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	return opts
}

func (c SMTPConfig) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: c.Host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}
}

// dialer connects, and closes the connection when ctx ends: go-mail's own
// timeout applies to each step, so a server that answers every step just
// in time could otherwise hold a message past its lease.
func (c SMTPConfig) dialer(ctx context.Context) gomail.DialContextFunc {
	return func(dialCtx context.Context, network, _ string) (net.Conn, error) {
		// go-mail joins host and port with a bare colon, which breaks IPv6
		// literals; the address is rebuilt here.
		var d net.Dialer
		conn, err := d.DialContext(dialCtx, network, net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, func() { conn.Close() })
		if !c.ImplicitTLS {
			return conn, nil
		}
		// go-mail does the TLS of smtps:// only with its own dialer. The
		// *tls.Conn is returned as is: go-mail recognizes it as encrypted.
		tc := tls.Client(conn, c.tlsConfig())
		if err := tc.HandshakeContext(dialCtx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// message builds m as multipart/alternative, text first.
func (c SMTPConfig) message(m store.Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(c.From); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	if _, err := checkAddress(m.Recipient); err != nil {
		return nil, err
	}
	if err := msg.To(m.Recipient); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(oneLine(m.Subject))
	msg.SetDateWithValue(m.CreatedAt)
	msg.SetMessageIDWithValue(messageID(m, c.From))
	// RFC 3834: no vacation or out-of-office replies to an automatic message.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// messageID is the same for every attempt at one message, so a receiver
// can recognize a duplicate delivery.
func messageID(m store.Mail, from string) string {
	domain := "twofold.invalid"
	if a, err := netmail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 && i < len(a.Address)-1 {
			domain = a.Address[i+1:]
		}
	}
	return fmt.Sprintf("twofold.%d.%d@%s", m.ID, m.CreatedAt.UnixMicro(), domain)
}
