package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds is the user plus system CPU time of pid so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: fields are
	// counted from the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// busyCPUSeconds is the CPU time all processes of the machine have spent
// so far (every field of /proc/stat's cpu line but idle and iowait).
func busyCPUSeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	total := 0.0
	for i, v := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		total += n
	}
	return total / clockTicks
}

// memKB reads a field such as VmRSS or VmHWM from /proc/<pid>/status, in KiB.
func memKB(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// pgBackendsCPU is the CPU time of the PostgreSQL backends serving
// database db (their command line names it), so other databases'
// work on the same cluster, such as tests running beside, is left out.
// Backends that exit between two readings take their time with them;
// twofold's pooled connections live as long as the server.
func pgBackendsCPU(db string) float64 {
	if db == "" {
		return 0
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	total := 0.0
	for _, d := range dirs {
		cmdline, err := os.ReadFile(d + "/cmdline")
		if err != nil || !bytes.HasPrefix(cmdline, []byte("postgres: ")) || !bytes.Contains(cmdline, []byte(" "+db+" ")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		total += cpuSeconds(pid)
	}
	return total
}

// rssSampler records the largest VmRSS of a process, read every 50 ms.
type rssSampler struct {
	pid  int
	mu   sync.Mutex
	max  int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			s.read()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) read() {
	if kb := memKB(s.pid, "VmRSS"); kb > 0 {
		s.mu.Lock()
		s.max = max(s.max, kb)
		s.mu.Unlock()
	}
}

// finish stops sampling and returns the largest VmRSS seen, in KiB.
func (s *rssSampler) finish() int64 {
	close(s.stop)
	<-s.done
	s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// dbCounters are PostgreSQL's cumulative statistics of the run's
// database: committed and rolled-back transactions (each statement
// outside a transaction is one, so this counts round trips from below)
// and rows read by scans (tup_returned).
type dbCounters struct {
	xacts, rows int64
}

// readDBCounters reads pg_stat_database for the run's database. It
// connects to the maintenance database so its own query is not counted.
func readDBCounters(ctx context.Context, e *env) (dbCounters, bool) {
	if e.dbName == "" {
		return dbCounters{}, false
	}
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return dbCounters{}, false
	}
	defer conn.Close(ctx)
	var c dbCounters
	err = conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback, tup_returned
		FROM pg_stat_database WHERE datname = $1`, e.dbName).Scan(&c.xacts, &c.rows)
	return c, err == nil
}

// settledDBCounters waits until PostgreSQL has published the counters of
// every backend and returns them. A backend publishes at most once a
// second, when idle, and retries up to 10 seconds later when another
// holds the lock; so the counters are read until two readings a second
// apart agree (at most 12 seconds).
func settledDBCounters(ctx context.Context, e *env) (dbCounters, bool) {
	prev, ok := readDBCounters(ctx, e)
	for i := 0; ok && i < 12; i++ {
		time.Sleep(time.Second)
		cur, ok := readDBCounters(ctx, e)
		if !ok || cur == prev {
			return cur, ok
		}
		prev = cur
	}
	return prev, ok
}

// analyze runs ANALYZE on the run's database. The database is minutes
// old, and autovacuum may not have gathered statistics yet; without them
// PostgreSQL can choose plans that a database in service would not (a
// scan of every access token by the primary key's kind prefix where the
// request_id index fits). So each scenario starts from fresh statistics.
func analyze(ctx context.Context, e *env) error {
	if e.dbName == "" {
		return nil
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "ANALYZE")
	return err
}
