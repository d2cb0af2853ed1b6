package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// cmdServe runs the server until SIGINT or SIGTERM.
func cmdServe(ctx context.Context, e env, args []string) error {
	f := newFlags("serve", e)
	dev := f.Bool("dev", false, "development mode: generated secret key under data_dir, demo data, /demo and /dev/mail")
	if err := f.parse(args); err != nil {
		return err
	}
	a, err := openApp(ctx, e, f.config, *dev)
	if err != nil {
		return err
	}
	defer a.close()
	srv, err := buildServer(ctx, a)
	if err != nil {
		return err
	}
	applyMemoryPlan(a.log, e.getenv, srv.passwords.MaxMemory())
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return err
	}
	if srv.demo != nil {
		startDev(e, a, srv.demo)
	}
	return serveHTTP(ctx, a, srv, ln)
}

// serveHTTP serves on ln with sane timeouts, runs the background loops, and
// shuts down gracefully when ctx ends: in-flight requests get 15 seconds.
func serveHTTP(ctx context.Context, a *app, srv *server, ln net.Listener) error {
	hs := &http.Server{
		Handler:           srv.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          nil,
	}
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.keys.RefreshEvery(bg, 10*time.Second) })
	wg.Go(func() { cleanupEvery(bg, a, 10*time.Minute) })
	if srv.worker != nil {
		wg.Go(func() {
			if err := srv.worker.Run(bg); err != nil {
				a.log.Error("mail delivery stopped", "err", err)
			}
		})
	}
	defer func() { stopBG(); wg.Wait() }()

	if a.cfg.PprofListen != "" {
		stopPprof, err := servePprof(a)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	a.log.Info("twofold listening", "addr", ln.Addr().String(), "issuer", a.cfg.Issuer, "database", a.db.Dialect())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// cleanupEvery deletes expired flows, sessions and tokens every d.
func cleanupEvery(ctx context.Context, a *app, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.db.DeleteExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
				a.log.Warn("delete expired records", "err", err)
			}
		}
	}
}

// servePprof serves Go's profiler on its own listener (pprof_listen), never
// on the public one: profiles reveal internals and cost CPU.
func servePprof(a *app) (func(), error) {
	ln, err := net.Listen("tcp", a.cfg.PprofListen)
	if err != nil {
		return nil, fmt.Errorf("pprof listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	a.log.Warn("profiler listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
