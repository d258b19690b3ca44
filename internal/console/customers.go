package console

import (
	"net/http"
	"strings"

	"selfserve/internal/service"
	"selfserve/internal/store"
)

// customerRow is a customer with its counts.
type customerRow struct {
	store.Customer
	store.CustomerCounts
}

// customersView is the customers page's data.
type customersView struct {
	Customers []customerRow
	Q         string
}

// home lists the tenant's customers with their end-user counts.
func (c *Console) home(w http.ResponseWriter, r *http.Request, s *session) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len([]rune(q)) > maxSearchLength {
		return service.BadField("q", "the search is longer than %d characters", maxSearchLength)
	}
	ctx := r.Context()
	t := s.actor.Tenant
	cs, err := c.st.Customers(ctx, t.ID)
	if err != nil {
		return err
	}
	counts, err := c.st.CustomerCounts(ctx, t.ID)
	if err != nil {
		return err
	}
	v := customersView{Q: q}
	locked := lockReason(t) != ""
	for _, cu := range cs {
		if q != "" && !strings.Contains(strings.ToLower(cu.Name), strings.ToLower(q)) {
			continue
		}
		n := counts[cu.ID]
		if locked {
			n.UserActive = 0 // the tenant's half of rules.Active fails for all
		}
		v.Customers = append(v.Customers, customerRow{cu, n})
	}
	c.render(w, http.StatusOK, "customers", "", s, "Customers", v)
	return nil
}
