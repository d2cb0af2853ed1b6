package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store/storetest"
)

// TestReadyz: /readyz is 200 while the database answers and a plain 503
// when the store's connections are closed, the database refuses
// connections, or it stops answering (then within about a second, not
// after a client's patience runs out); it is 200 again when the database
// is back, without restarting twofold.
func TestReadyz(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		s := newTestServer(t, b, nil)
		assertReady(t, s)
		s.db.Close()
		assertNotReady(t, s)
		if resp, err := http.Get(s.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz with the store closed: %v %v", resp, err) // the process is up
		}
	})

	t.Run("postgres refusing connections", func(t *testing.T) {
		d := newPGDatabase(t)
		s := newTestServer(t, d.backend(), nil)
		assertReady(t, s)
		d.cutOff()
		assertNotReady(t, s)
		d.restore()
		assertReady(t, s)
	})

	t.Run("postgres not answering", func(t *testing.T) {
		pg, ok := storetest.Postgres(t)
		if !ok {
			t.Skipf("%s is not set", storetest.EnvPostgresURL)
		}
		dsn, err := url.Parse(pg.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		gate := startTCPGate(t, dsn.Host)
		dsn.Host = gate.addr()
		s := newTestServer(t, storetest.Backend{Name: "postgres", URL: func(testing.TB) string { return dsn.String() }}, nil)
		t.Cleanup(gate.open) // before the store closes
		assertReady(t, s)
		gate.freeze()
		start := time.Now()
		assertNotReady(t, s)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("/readyz took %v to give up on a database that does not answer", d)
		}
		gate.open()
		deadline := time.Now().Add(5 * time.Second)
		for st, _ := s.readyz(); st != http.StatusOK; st, _ = s.readyz() {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz still %d after the database answers again", st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func assertReady(t *testing.T, s *testServer) {
	t.Helper()
	if st, body := s.readyz(); st != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz with the database up: %d %q", st, body)
	}
}

func assertNotReady(t *testing.T, s *testServer) {
	t.Helper()
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "Service Unavailable\n" ||
		resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("/readyz without a database: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// tcpGate is a TCP forwarder that can freeze: it then passes no byte
// either way and holds new connections, like a database host that has
// stopped answering (no reset, no refusal, just silence).
type tcpGate struct {
	t      *testing.T
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
}

func startTCPGate(t *testing.T, target string) *tcpGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &tcpGate{t: t, ln: ln, target: target}
	g.cond = sync.NewCond(&g.mu)
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); g.open(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { g.serve(c) })
		}
	}()
	return g
}

func (g *tcpGate) addr() string { return g.ln.Addr().String() }

func (g *tcpGate) freeze() {
	g.mu.Lock()
	g.frozen = true
	g.mu.Unlock()
}

func (g *tcpGate) open() {
	g.mu.Lock()
	g.frozen = false
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *tcpGate) wait() {
	g.mu.Lock()
	for g.frozen {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

func (g *tcpGate) serve(c net.Conn) {
	defer c.Close()
	g.wait()
	up, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			g.wait()
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // either side closed: close both
}
