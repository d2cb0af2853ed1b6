package mailtest

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server. The zero value accepts any message from
// anyone, in plain text.
type Options struct {
	// User and Pass, when User is set, are required: MAIL before a
	// successful AUTH is refused.
	User, Pass string
	// Mechs are the offered AUTH mechanisms, sasl.Plain and/or sasl.Login
	// (default PLAIN). They are offered only when User is set.
	Mechs []string
	// TLS is offered through STARTTLS, or spoken from the first byte when
	// Implicit is set.
	TLS      *tls.Config
	Implicit bool
	// OnData, when set, runs when a message's data has been read, before
	// the server answers (for example to cancel the sender's context
	// mid-conversation).
	OnData func()
}

// Server is a running SMTP server on loopback. It keeps every message it
// accepts; its methods are safe for concurrent use.
type Server struct {
	opts  Options
	srv   *smtp.Server
	l     net.Listener
	addr  string
	close sync.Once
	done  chan struct{} // closed when Serve has returned

	mu       sync.Mutex
	messages []Message
	errs     []error // messages refused because they did not parse
}

// Start starts a server listening on addr ("127.0.0.1:0" for any free
// port, or an address from FreeAddr). It is stopped when the test ends.
func Start(t testing.TB, addr string, opts Options) *Server {
	t.Helper()
	if opts.Implicit && opts.TLS == nil {
		t.Fatal("mailtest: Implicit needs a TLS config")
	}
	s := &Server{opts: opts, done: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	// Plain-text AUTH is allowed because the server is on loopback only.
	s.srv.AllowInsecureAuth = true
	s.srv.TLSConfig = opts.TLS
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("mailtest: listen on %s: %v", addr, err)
	}
	if opts.Implicit {
		l = tls.NewListener(l, opts.TLS)
	}
	s.l, s.addr = l, l.Addr().String()
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("mailtest: smtp server: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, err := range s.errs {
			t.Errorf("mailtest: refused a message that does not parse: %v", err)
		}
	})
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns "smtp://" followed by Addr, without credentials. For an
// Implicit server the caller writes smtps:// itself.
func (s *Server) URL() string { return "smtp://" + s.addr }

// Close stops the server now, dropping open connections; its port refuses
// connections afterwards. Calling it again does nothing.
func (s *Server) Close() {
	s.close.Do(func() {
		s.srv.Close()
		s.l.Close() // in case Serve had not registered it yet
		<-s.done
	})
}

// Messages returns a copy of the messages accepted so far, in arrival
// order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Wait polls until at least n messages have arrived and returns them all.
// It fails the test if that takes longer than timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			refused := len(s.errs)
			s.mu.Unlock()
			t.Fatalf("mailtest: %d messages after %v, want at least %d (%d more refused as unparsable)", len(msgs), timeout, n, refused)
			return msgs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{server: s, tls: isTLS}, nil
}

// session is one SMTP connection.
type session struct {
	server   *Server
	tls      bool
	authUser string
	msg      Message
}

func (s *session) AuthMechanisms() []string {
	if s.server.opts.User == "" {
		return nil
	}
	if m := s.server.opts.Mechs; m != nil {
		return m
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.server.opts.User || pass != s.server.opts.Pass {
			return smtp.ErrAuthFailed
		}
		s.authUser = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.server.opts.User != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.msg = Message{From: from, AuthUser: s.authUser, TLS: s.tls}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.server.opts.OnData != nil {
		s.server.opts.OnData()
	}
	msg := s.msg
	msg.Data = b
	if err := msg.parse(); err != nil {
		s.server.mu.Lock()
		s.server.errs = append(s.server.errs, err)
		s.server.mu.Unlock()
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: " + err.Error()}
	}
	s.server.mu.Lock()
	s.server.messages = append(s.server.messages, msg)
	s.server.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.msg = Message{} }
func (s *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if response != nil { // an initial response is the user name
			l.user, l.step = string(response), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(response)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}
