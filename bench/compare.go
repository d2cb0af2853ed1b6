package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// compareKeys are the scenarios -compare runs against Hydra too.
var compareKeys = []string{"client-credentials", "code", "introspection"}

// hydraScenarios are those scenarios as Hydra serves them: the same
// requests and checks, at Hydra's endpoints.
func hydraScenarios(hy *hydra) []scenario {
	return []scenario{
		{key: "client-credentials", title: "Client credentials (Ory Hydra)",
			what:    "POST /oauth2/token grant_type=client_credentials with HTTP Basic, as for twofold.",
			prepare: func(ctx context.Context, h *harness, n int) ([]op, error) { return hy.clientCredentialsOps(h, n), nil }},
		{key: "code", title: "Authorization code with a live session (Ory Hydra)",
			what: "As for twofold, plus Hydra's round trips through the login and consent app (it accepts at once, remembered): " +
				"authorize → login app → Hydra → consent app → Hydra → code → token exchange with PKCE → ID token verified → userinfo.",
			prepare: hy.codeFlowOps},
		{key: "introspection", title: "Introspection (Ory Hydra)",
			what:    "POST /admin/oauth2/introspect of an access token (Hydra's admin API takes no client authentication); active must be true.",
			prepare: hy.introspectionOps},
	}
}

// runCompare measures the compared scenarios on Hydra with the same
// levels and returns its tables and the ratios to twofold's results.
func (h *harness) runCompare(ctx context.Context, ours map[string]scenarioResult) (string, error) {
	hy, err := startHydra(ctx, h.opts)
	if err != nil {
		return "", err
	}
	defer hy.close(ctx)
	logf("Ory Hydra %s listening on %s (admin %s)", hydraVersion, hy.public, hy.admin)
	var b strings.Builder
	theirs := map[string]scenarioResult{}
	for _, sc := range hydraScenarios(hy) {
		if _, ok := ours[sc.key]; !ok {
			continue
		}
		res := scenarioResult{scenario: sc, server: "Hydra"}
		if err := h.runLevels(ctx, &res, hy.env, hy.srv); err != nil {
			return "", fmt.Errorf("hydra %s: %w", sc.key, err)
		}
		theirs[sc.key] = res
		b.WriteString(renderScenario(res) + "\n")
	}
	return renderRatios(ours, theirs) + "\n" + b.String(), nil
}

// renderRatios is the comparison table: throughput and p99 of both at
// each level, and twofold's throughput over Hydra's.
func renderRatios(ours, theirs map[string]scenarioResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Compared with Ory Hydra %s\n\n", hydraVersion)
	b.WriteString("Hydra in its default configuration (opaque tokens, its default client-secret hashing) but with a connection pool of one per client at least (with fewer its code flows stall), on its own fresh database on the same PostgreSQL, started by the same run (`-compare`); for the code flow, a minimal login and consent app inside the harness that accepts at once.\n\n")
	b.WriteString("| scenario | clients | twofold ops/s | Hydra ops/s | ratio | twofold p99 ms | Hydra p99 ms |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, k := range compareKeys {
		o, t := ours[k], theirs[k]
		for i := range min(len(o.levels), len(t.levels)) {
			lo, lt := o.levels[i], t.levels[i]
			ratio := "–"
			if lt.opsPerSec() > 0 {
				ratio = fmt.Sprintf("%.1f×", lo.opsPerSec()/lt.opsPerSec())
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %s | %s | %s |\n", k, lo.conc, lo.opsPerSec(), lt.opsPerSec(), ratio, ms(lo.p99), ms(lt.p99))
		}
	}
	return b.String()
}

func (hy *hydra) clientCredentialsOps(h *harness, n int) []op {
	ops := make([]op, n)
	for i := range ops {
		ops[i] = func(ctx context.Context) error { _, err := hy.clientToken(ctx, h); return err }
	}
	return ops
}

func (hy *hydra) clientToken(ctx context.Context, h *harness) (string, error) {
	var t tokenResponse
	err := h.postJSON(ctx, hy.public+"/oauth2/token", hy.service, url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}, &t)
	if err == nil && t.AccessToken == "" {
		err = errors.New("no access_token")
	}
	return t.AccessToken, err
}

func (hy *hydra) introspectionOps(ctx context.Context, h *harness, n int) ([]op, error) {
	ops := make([]op, n)
	for i := range ops {
		token, err := hy.clientToken(ctx, h)
		if err != nil {
			return nil, err
		}
		ops[i] = func(ctx context.Context) error {
			b, err := h.fetch(ctx, http.MethodPost, hy.admin+"/admin/oauth2/introspect", nil, url.Values{"token": {token}})
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), `"active":true`) {
				return errors.New("introspection: token not active")
			}
			return nil
		}
	}
	return ops, nil
}

// codeFlowOps signs n browsers in through the login and consent app
// (remembered), then measures the flow with that live session.
func (hy *hydra) codeFlowOps(ctx context.Context, h *harness, n int) ([]op, error) {
	// Hydra names its issuer as it likes (with or without a trailing
	// slash); the application takes it from the discovery document.
	var disc struct {
		Issuer string `json:"issuer"`
	}
	b, err := h.fetch(ctx, http.MethodGet, hy.public+"/.well-known/openid-configuration", nil, nil)
	if err == nil {
		err = json.Unmarshal(b, &disc)
	}
	if err != nil {
		return nil, fmt.Errorf("hydra discovery: %w", err)
	}
	rp, err := newRelyingParty(ctx, h.httpc, disc.Issuer, hy.web)
	if err != nil {
		return nil, err
	}
	ops := make([]op, n)
	for i := range ops {
		b := newBrowser(h.transport, hy.public, "")
		b.follow = append(b.follow, hy.appURL+"/")
		if err := rp.liveSessionFlow(ctx, b); err != nil {
			return nil, fmt.Errorf("sign in browser %d: %w", i, err)
		}
		ops[i] = func(ctx context.Context) error { return rp.liveSessionFlow(ctx, b) }
	}
	return ops, nil
}
