// Package metrics exposes twofold's Prometheus metrics at /metrics:
// request latency by route, security events (sign-ins by outcome and
// factor, second-factor failures and throttles, resets, …), the mail
// outbox's depth and oldest age, and the database pool.
//
// Security events are counted where they are recorded: every audit event
// the store writes is handed to CountAudit (store.DB.SetAuditHook), by kind
// and by method or factor, so the metrics and the audit log cannot
// disagree about what happened. /metrics answers only clients in the allowed networks
// (loopback and private ranges by default): it describes the service, and
// the public has no business reading it.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twofold-id/twofold/store"
	"github.com/twofold-id/twofold/web"
)

// Source is what the metrics read at scrape time.
type Source interface {
	Stats() sql.DBStats
	MailBacklog(ctx context.Context, now time.Time) (int, time.Duration, error)
}

// Metrics holds the registry and the collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	events   *prometheus.CounterVec
	router   *mux.Router
	allowed  []netip.Prefix
	clientIP web.ClientIP
}

// DefaultAllowed are the networks that may read /metrics by default.
var DefaultAllowed = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
}

// New registers twofold's collectors. router names the routes of request
// metrics (by template, so ids in paths do not explode the label space).
func New(src Source, router *mux.Router, allowed []netip.Prefix, clientIP web.ClientIP) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), router: router, allowed: allowed, clientIP: clientIP}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "twofold_http_request_duration_seconds", Help: "HTTP requests by route template, method and status class.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method", "status"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "twofold_security_events_total",
		Help: "Security events as written to the audit log, by kind (login.succeeded, login.failed, mfa.failed, mfa.throttled, reset.initiated, …) and method.",
	}, []string{"kind", "method"})
	outbox := func(pick func(int, time.Duration) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, age, err := src.MailBacklog(ctx, time.Now())
			if err != nil {
				return -1
			}
			return pick(n, age)
		}
	}
	m.reg.MustRegister(m.requests, m.events,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "twofold_mail_outbox_pending", Help: "Messages waiting to be sent (-1: unknown)."},
			outbox(func(n int, _ time.Duration) float64 { return float64(n) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "twofold_mail_outbox_oldest_seconds", Help: "Age of the oldest waiting message (-1: unknown)."},
			outbox(func(_ int, age time.Duration) float64 { return age.Seconds() })),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.reg.MustRegister(poolCollectors(src)...)
	return m
}

// poolCollectors report the database connection pool.
func poolCollectors(src Source) []prometheus.Collector {
	gauge := func(name, help string, f func(sql.DBStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "twofold_db_" + name, Help: help},
			func() float64 { return f(src.Stats()) })
	}
	counter := func(name, help string, f func(sql.DBStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "twofold_db_" + name, Help: help},
			func() float64 { return f(src.Stats()) })
	}
	return []prometheus.Collector{
		gauge("connections_open", "Open connections.", func(s sql.DBStats) float64 { return float64(s.OpenConnections) }),
		gauge("connections_in_use", "Connections in use.", func(s sql.DBStats) float64 { return float64(s.InUse) }),
		gauge("connections_idle", "Idle connections.", func(s sql.DBStats) float64 { return float64(s.Idle) }),
		gauge("connections_max", "Maximum open connections.", func(s sql.DBStats) float64 { return float64(s.MaxOpenConnections) }),
		counter("wait_total", "Times a request waited for a connection.", func(s sql.DBStats) float64 { return float64(s.WaitCount) }),
		counter("wait_seconds_total", "Time spent waiting for a connection.", func(s sql.DBStats) float64 { return s.WaitDuration.Seconds() }),
	}
}

// Observe records one request; it is web.Logging's hook.
func (m *Metrics) Observe(r *http.Request, status int, d time.Duration) {
	route := "unmatched"
	var match mux.RouteMatch
	if m.router.Match(r, &match) && match.Route != nil {
		if t, err := match.Route.GetPathTemplate(); err == nil {
			route = t
		}
	}
	m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status/100)+"xx").Observe(d.Seconds())
}

// Mount registers GET /metrics.
func (m *Metrics) Mount(r *mux.Router) {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	r.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		addr, err := netip.ParseAddr(m.clientIP.Of(req))
		if err != nil || !m.allows(addr) {
			web.PlainError(w, http.StatusNotFound)
			return
		}
		h.ServeHTTP(w, req)
	})).Methods(http.MethodGet)
}

func (m *Metrics) allows(a netip.Addr) bool {
	for _, p := range m.allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CountAudit counts a security event written to the audit log.
func (m *Metrics) CountAudit(e store.AuditEvent) {
	m.events.WithLabelValues(e.Kind, e.Details["method"]+e.Details["factor"]).Inc()
}
