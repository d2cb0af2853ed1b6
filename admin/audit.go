package admin

import (
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/twofold-id/twofold/store"
)

// auditPage is the data of pages/audit.html.
type auditPage struct {
	Org    store.Organization
	Events []auditRow
}

type auditRow struct {
	At                  time.Time
	Kind, Actor, Target string
	ClientAddr, Details string
}

// handleAudit shows the organization's newest audit events.
func (h *Handler) handleAudit(w http.ResponseWriter, r *http.Request) {
	_, _, om, ok := h.ownerPage(w, r)
	if !ok {
		return
	}
	events, err := h.Store.ListAudit(r.Context(), store.AuditFilter{OrgID: om.Org.ID, Limit: 200})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	names := map[string]string{"operator": "operator (command line)", "": "—"}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		n := id
		if u, err := h.Store.GetUser(r.Context(), id); err == nil {
			n = u.Email
		}
		names[id] = n
		return n
	}
	page := auditPage{Org: om.Org}
	for _, e := range events {
		row := auditRow{At: e.At, Kind: e.Kind, Actor: name(e.ActorID), Target: name(e.TargetID), ClientAddr: e.ClientAddr}
		for _, k := range slices.Sorted(maps.Keys(e.Details)) {
			if row.Details != "" {
				row.Details += ", "
			}
			row.Details += k + ": " + e.Details[k]
		}
		page.Events = append(page.Events, row)
	}
	h.render(w, r, http.StatusOK, "audit", page)
}
