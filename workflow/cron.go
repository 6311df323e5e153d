package workflow

import (
	"fmt"
	"strconv"
	"strings"
)

// GitHubCron converts an EventBridge cron expression, cron(min hour dom month
// dow year), to the 5-field cron of a GitHub schedule trigger. Both run in
// UTC. It returns an error for what GitHub cannot express: rate(...), a year
// other than *, and EventBridge's L, W and # forms.
//
// Day-of-week numbers differ: EventBridge counts 1-7 from Sunday, cron 0-6
// from Sunday; names (SUN-SAT, JAN-DEC) mean the same in both.
func GitHubCron(expr string) (string, error) {
	e := strings.TrimSpace(expr)
	if !strings.HasPrefix(e, "cron(") || !strings.HasSuffix(e, ")") {
		return "", fmt.Errorf("schedule %q: only cron(...) expressions convert to a GitHub schedule; write the rate as cron(...)", expr)
	}
	f := strings.Fields(e[len("cron(") : len(e)-1])
	if len(f) != 6 {
		return "", fmt.Errorf("schedule %q: an EventBridge cron has 6 fields (minutes hours day-of-month month day-of-week year), this one has %d", expr, len(f))
	}
	if f[5] != "*" {
		return "", fmt.Errorf("schedule %q: GitHub cannot restrict the year (%s); use *", expr, f[5])
	}
	if (f[2] == "?") == (f[4] == "?") {
		return "", fmt.Errorf("schedule %q: EventBridge needs ? in exactly one of day-of-month and day-of-week", expr)
	}
	fields := []struct {
		name     string
		min, max int
		names    []string
		shift    int // added to numbers (day-of-week: EventBridge 1-7 -> cron 0-6)
	}{
		{"minutes", 0, 59, nil, 0},
		{"hours", 0, 23, nil, 0},
		{"day-of-month", 1, 31, nil, 0},
		{"month", 1, 12, []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}, 0},
		{"day-of-week", 1, 7, []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, -1},
	}
	out := make([]string, 5)
	for i, spec := range fields {
		v := f[i]
		if v == "?" {
			out[i] = "*"
			continue
		}
		var parts []string
		for _, item := range strings.Split(v, ",") {
			p, err := convertItem(item, spec.min, spec.max, spec.names, spec.shift)
			if err != nil {
				return "", fmt.Errorf("schedule %q: %s field %q: %v", expr, spec.name, v, err)
			}
			parts = append(parts, p)
		}
		out[i] = strings.Join(parts, ",")
	}
	return strings.Join(out, " "), nil
}

// convertItem converts one list item: *, N, A-B, */S, N/S, A-B/S.
func convertItem(item string, min, max int, names []string, shift int) (string, error) {
	if strings.ContainsAny(item, "LW#") && !isName(item, names) {
		return "", fmt.Errorf("%q: L, W and # have no GitHub equivalent", item)
	}
	rng, step, hasStep := strings.Cut(item, "/")
	if hasStep {
		n, err := strconv.Atoi(step)
		if err != nil || n < 1 || n > max {
			return "", fmt.Errorf("%q: bad step %q", item, step)
		}
	}
	var lo, hi string
	switch {
	case rng == "*":
		if !hasStep {
			return "*", nil
		}
		return "*/" + step, nil
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		var err error
		if lo, err = value(a, min, max, names, shift); err != nil {
			return "", err
		}
		if hi, err = value(b, min, max, names, shift); err != nil {
			return "", err
		}
	default:
		var err error
		if lo, err = value(rng, min, max, names, shift); err != nil {
			return "", err
		}
		if hasStep {
			// EventBridge's N/S starts at N and runs to the end of the range;
			// cron spells that N-max/S.
			hi = strconv.Itoa(max + shift)
		}
	}
	s := lo
	if hi != "" {
		s += "-" + hi
	}
	if hasStep {
		s += "/" + step
	}
	return s, nil
}

func isName(s string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(s, n) {
			return true
		}
	}
	return false
}

func value(s string, min, max int, names []string, shift int) (string, error) {
	if isName(s, names) {
		return strings.ToUpper(s), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return "", fmt.Errorf("%q is not a value from %d to %d", s, min, max)
	}
	return strconv.Itoa(n + shift), nil
}
