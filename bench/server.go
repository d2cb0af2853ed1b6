package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a running `twofold serve` (or `hydra serve`) process.
type server struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	done    chan error
	once    sync.Once
	err     error // of the first stop
	// readyLines is what the log held when the server became ready.
	readyLines int
}

// startServer starts twofold serve and waits until /readyz answers.
func startServer(ctx context.Context, e *env, name string) (*server, error) {
	return startProcess(ctx, e.bin, []string{"serve"}, e.environ(),
		filepath.Join(e.dir, "serve-"+name+".log"), e.issuer+"/readyz")
}

// startProcess starts a server (twofold, or Hydra for -compare) logging
// to logPath and waits until readyURL answers 200.
func startProcess(ctx context.Context, bin string, args, environ []string, logPath, readyURL string) (*server, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// Not CommandContext: the server is stopped with SIGTERM by stop, so
	// that it shuts down as in production.
	cmd := exec.Command(bin, args...)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logFile.Close() }()
	if err := s.waitReady(ctx, readyURL); err != nil {
		return nil, errors.Join(err, s.stop())
	}
	s.readyLines = s.logLines()
	return s, nil
}

// waitReady polls readyURL for up to 30 seconds.
func (s *server) waitReady(ctx context.Context, readyURL string) error {
	deadline := time.Now().Add(30 * time.Second)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("%s exited: %v\n%s", filepath.Base(s.cmd.Path), err, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := c.Get(readyURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 30s\n%s", filepath.Base(s.cmd.Path), s.logTail())
}

// stop sends SIGTERM and waits up to 20 seconds before killing. Calling
// it again returns the first call's error.
func (s *server) stop() error {
	s.once.Do(func() { s.err = s.terminate() })
	return s.err
}

func (s *server) terminate() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("twofold serve: %v\n%s", err, s.logTail())
		}
		return err
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("twofold serve did not stop within 20s; killed")
	}
}

// logTail is the end of the server's log, for error messages.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	const max = 3000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// logLines counts the lines the server logged (at warn and above); minus
// readyLines, those logged while serving: a scenario that makes twofold
// log is worth a look.
func (s *server) logLines() int {
	b, _ := os.ReadFile(s.logPath)
	return strings.Count(string(b), "\n")
}

// logSample is up to n distinct lines logged while serving, without
// their timestamps and cut at 200 characters.
func (s *server) logSample(n int) []string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var out []string
	for _, l := range lines[min(s.readyLines, len(lines)):] {
		if _, rest, ok := strings.Cut(l, " "); ok && strings.HasPrefix(l, "time=") {
			l = rest
		}
		if len(l) > 200 {
			l = l[:200] + "…"
		}
		if l != "" && !slices.Contains(out, l) && len(out) < n {
			out = append(out, l)
		}
	}
	return out
}
