package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/argon2"
)

// machine describes where the numbers were taken.
type machine struct {
	cpuModel   string
	cpus       int
	memTotal   string
	goVersion  string
	dbVersion  string
	kernel     string
	date       time.Time
	loadAvg    string // at the start: other work on the machine shows here
	commit     string
	gomaxprocs int
}

func numCPU() int { return runtime.NumCPU() }

// describeMachine reads /proc, the Go runtime, git and the database.
func describeMachine(ctx context.Context, e *env) machine {
	m := machine{cpus: numCPU(), goVersion: runtime.Version(), date: time.Now(), gomaxprocs: runtime.GOMAXPROCS(0)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(strings.TrimPrefix(line, "MemTotal:")); len(f) > 0 {
			kb, _ := strconv.ParseFloat(f[0], 64)
			m.memTotal = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.loadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output(); err == nil {
		m.commit = strings.TrimSpace(string(out))
	}
	m.dbVersion = "SQLite (modernc.org/sqlite, in the twofold process)"
	if e.dialect == "postgres" {
		if conn, err := pgx.Connect(ctx, e.adminURL); err == nil {
			var v string
			if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
				m.dbVersion = "PostgreSQL " + v + " on loopback"
			}
			conn.Close(ctx)
		}
	}
	return m
}

// argonFloor is how many argon2id hashes per second at twofold's
// parameters (m=19 MiB, t=2, p=1) this machine does with every core busy:
// the ceiling of any sign-in that checks a password.
func argonFloor(d time.Duration) float64 {
	var done atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range numCPU() {
		wg.Go(func() {
			salt := []byte("0123456789abcdef")
			for time.Now().Before(deadline) {
				argon2.IDKey([]byte("correct horse battery staple"), salt, 2, 19*1024, 1, 32)
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}
