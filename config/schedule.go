package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed EventBridge schedule expression, the one parse of
// evergreen:schedule: the stack passes Expr to the rule, the GitHub workflow
// converts the fields (GitHubCron), and the staleness check measures MaxGap.
//
// The rules are those of AWS's "Schedule expressions for rules" reference
// (EventBridge User Guide: eb-scheduled-rule-pattern, eb-cron-expressions,
// eb-rate-expressions), each cited where it is checked.
type Schedule struct {
	// Expr is the expression as written (trimmed).
	Expr string
	// Rate is set for rate(...): Every is value x unit.
	Rate  bool
	Every time.Duration
	// Fields are the six cron fields, as written, for cron(...).
	Fields [6]string
	sets   [6]fieldSet
	dom    daySpec
	dow    daySpec
}

func (s Schedule) String() string { return s.Expr }

// cronField describes one field of EventBridge's cron table: "Minutes 0-59
// , - * /; Hours 0-23 , - * /; Day-of-month 1-31 , - * ? / L W; Month 1-12 or
// JAN-DEC , - * /; Day-of-week 1-7 or SUN-SAT , - * ? L #; Year 1970-2199 , - * /".
type cronField struct {
	name      string
	lo, hi    int
	names     []string
	wildcards string
	example   string
}

var cronFields = [6]cronField{
	{"minutes", 0, 59, nil, ",-*/", "0"},
	{"hours", 0, 23, nil, ",-*/", "4"},
	{"day-of-month", 1, 31, nil, ",-*?/LW", "*"},
	{"month", 1, 12, []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}, ",-*/", "*"},
	{"day-of-week", 1, 7, []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}, ",-*?L#", "?"},
	{"year", 1970, 2199, nil, ",-*/", "*"},
}

const (
	fMinute = iota
	fHour
	fDom
	fMonth
	fDow
	fYear
)

type fieldSet map[int]bool

// daySpec holds the day-of-month or day-of-week forms that are not plain sets.
type daySpec struct {
	any        bool // ?
	last       bool // L: last day of the month (day-of-month) or Saturday (day-of-week)
	lastOf     int  // day-of-week nL: the last weekday n of the month
	nearestDay int  // day-of-month nW: the weekday nearest day n
	nth, nthOf int  // day-of-week d#n: the nth weekday d of the month
}

// ParseSchedule parses and validates a schedule expression. Its errors name
// the field at fault and show a valid example.
func ParseSchedule(expr string) (Schedule, error) {
	e := strings.TrimSpace(expr)
	s := Schedule{Expr: e}
	switch {
	case strings.HasPrefix(e, "rate(") && strings.HasSuffix(e, ")"):
		return s, s.parseRate(e[len("rate(") : len(e)-1])
	case strings.HasPrefix(e, "cron(") && strings.HasSuffix(e, ")"):
		return s, s.parseCron(e[len("cron(") : len(e)-1])
	}
	return s, fmt.Errorf("%q is not an EventBridge schedule expression: write cron(minutes hours day-of-month month day-of-week year), e.g. %s, or rate(value unit), e.g. rate(12 hours)", expr, DefaultSchedule)
}

// parseRate: "rate(value unit)": value a positive number; unit minute,
// minutes, hour, hours, day or days; "if the value is equal to 1, then the
// unit must be singular ... greater than 1, the unit must be plural"
// (eb-rate-expressions).
func (s *Schedule) parseRate(body string) error {
	f := strings.Fields(body)
	if len(f) != 2 {
		return fmt.Errorf("%q: a rate has two parts, a value and a unit, e.g. rate(1 day) or rate(12 hours)", s.Expr)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 {
		return fmt.Errorf("%q: the value %q is not a positive whole number, e.g. rate(12 hours)", s.Expr, f[0])
	}
	units := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
	unit := f[1]
	singular := strings.TrimSuffix(unit, "s")
	d, ok := units[singular]
	if !ok {
		return fmt.Errorf("%q: the unit %q is not minute(s), hour(s) or day(s), e.g. rate(12 hours)", s.Expr, unit)
	}
	if n == 1 && unit != singular {
		return fmt.Errorf("%q: with the value 1 the unit is singular: rate(1 %s)", s.Expr, singular)
	}
	if n > 1 && unit == singular {
		return fmt.Errorf("%q: with a value above 1 the unit is plural: rate(%d %ss)", s.Expr, n, singular)
	}
	s.Rate, s.Every = true, time.Duration(n)*d
	return nil
}

// parseCron: "Cron expressions have six required fields, which are separated
// by white space" (eb-cron-expressions).
func (s *Schedule) parseCron(body string) error {
	f := strings.Fields(body)
	if len(f) != 6 {
		return fmt.Errorf("%q has %d fields; an EventBridge cron has 6: minutes hours day-of-month month day-of-week year, e.g. %s (a Unix cron's 5 fields need a ? and a year added)", s.Expr, len(f), DefaultSchedule)
	}
	copy(s.Fields[:], f)
	for i, v := range f {
		spec := cronField(cronFields[i])
		if err := s.parseField(i, v); err != nil {
			return fmt.Errorf("%q: %s field %q: %v (e.g. %q in %s)", s.Expr, spec.name, v, err, spec.example, DefaultSchedule)
		}
	}
	// "You can't specify the Day-of-month and Day-of-week fields in the same
	// cron expression. If you specify a value or a * (asterisk) in one of the
	// fields, you must use a ? (question mark) in the other."
	if s.dom.any == s.dow.any {
		return fmt.Errorf("%q: use ? in exactly one of day-of-month (%s) and day-of-week (%s), e.g. cron(0 4 * * ? *) daily or cron(0 4 ? * MON *) on Mondays", s.Expr, f[fDom], f[fDow])
	}
	return nil
}

func (s *Schedule) parseField(i int, v string) error {
	spec := cronFields[i]
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') && !strings.ContainsRune(spec.wildcards, r) {
			return fmt.Errorf("%q is not allowed here; this field takes values %d-%d%s and the wildcards %s", string(r), spec.lo, spec.hi, namesHint(spec), spaced(spec.wildcards))
		}
	}
	set := fieldSet{}
	day := &s.dom
	if i == fDow {
		day = &s.dow
	}
	if v == "?" {
		if i != fDom && i != fDow {
			return fmt.Errorf("? is allowed only in day-of-month and day-of-week")
		}
		day.any = true
		s.sets[i] = set
		return nil
	}
	// "If you use the # character, you can define only one expression in
	// the day-of-week field. For example, "3#1,6#3" is not valid."
	if i == fDow && strings.Contains(v, "#") {
		d, n, _ := strings.Cut(v, "#")
		dv, err := value(spec, d)
		if err != nil {
			return err
		}
		nv, err := strconv.Atoi(n)
		if err != nil || nv < 1 || nv > 5 {
			return fmt.Errorf("in %q the instance after # must be 1 to 5, and # allows no list (e.g. 2#1, the first Monday)", v)
		}
		day.nthOf, day.nth = dv, nv
		s.sets[i] = set
		return nil
	}
	for _, item := range strings.Split(v, ",") {
		if err := s.parseItem(i, item, set, day); err != nil {
			return err
		}
	}
	s.sets[i] = set
	return nil
}

func (s *Schedule) parseItem(i int, item string, set fieldSet, day *daySpec) error {
	spec := cronFields[i]
	switch {
	case item == "":
		return fmt.Errorf("an empty list item")
	case item == "L" && (i == fDom || i == fDow):
		day.last = true
		return nil
	case i == fDom && strings.HasSuffix(item, "W"):
		n, err := strconv.Atoi(strings.TrimSuffix(item, "W"))
		if err != nil || n < 1 || n > 31 {
			return fmt.Errorf("%q: W follows a day of the month, e.g. 15W", item)
		}
		day.nearestDay = n
		return nil
	case i == fDow && strings.HasSuffix(item, "L"):
		d, err := value(spec, strings.TrimSuffix(item, "L"))
		if err != nil {
			return fmt.Errorf("%q: L follows a day of the week, e.g. 6L (the last Friday): %v", item, err)
		}
		day.lastOf = d
		return nil
	}
	rng, step, hasStep := strings.Cut(item, "/")
	stepN := 1
	if hasStep {
		n, err := strconv.Atoi(step)
		if err != nil || n < 1 || n > spec.hi-spec.lo+1 {
			return fmt.Errorf("%q: the increment after / must be from 1 to %d", item, spec.hi-spec.lo+1)
		}
		stepN = n
	}
	lo, hi := spec.lo, spec.hi
	switch {
	case rng == "*":
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		var err error
		if lo, err = value(spec, a); err != nil {
			return err
		}
		if hi, err = value(spec, b); err != nil {
			return err
		}
		if lo > hi {
			return fmt.Errorf("the range %q runs backwards", rng)
		}
	default:
		n, err := value(spec, rng)
		if err != nil {
			return err
		}
		lo = n
		if !hasStep {
			hi = n
		}
	}
	for n := lo; n <= hi; n += stepN {
		set[n] = true
	}
	return nil
}

func value(spec cronField, s string) (int, error) {
	for i, n := range spec.names {
		if strings.EqualFold(s, n) {
			return i + 1, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < spec.lo || n > spec.hi {
		return 0, fmt.Errorf("%q is not a value from %d to %d%s", s, spec.lo, spec.hi, namesHint(spec))
	}
	return n, nil
}

func namesHint(spec cronField) string {
	if len(spec.names) == 0 {
		return ""
	}
	return " or " + spec.names[0] + "-" + spec.names[len(spec.names)-1]
}

func spaced(w string) string {
	return strings.Join(strings.Split(w, ""), " ")
}

// matches reports whether the cron fires at t (UTC, whole minutes).
func (s Schedule) matches(t time.Time) bool {
	if !s.sets[fMinute][t.Minute()] || !s.sets[fHour][t.Hour()] || !s.sets[fMonth][int(t.Month())] || !s.sets[fYear][t.Year()] {
		return false
	}
	if s.dow.any {
		return s.dayOfMonth(t)
	}
	return s.dayOfWeek(t)
}

func (s Schedule) dayOfMonth(t time.Time) bool {
	last := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	switch {
	case s.sets[fDom][t.Day()]:
		return true
	case s.dom.last && t.Day() == last:
		return true
	case s.dom.nearestDay > 0:
		return t.Day() == nearestWeekday(t.Year(), t.Month(), min(s.dom.nearestDay, last), last)
	}
	return false
}

// nearestWeekday is the weekday closest to day d, within the month (the
// Quartz semantics EventBridge's W follows: 1W on a Saturday is Monday the 3rd).
func nearestWeekday(y int, m time.Month, d, last int) int {
	switch time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday() {
	case time.Saturday:
		if d == 1 {
			return 3
		}
		return d - 1
	case time.Sunday:
		if d == last {
			return d - 2
		}
		return d + 1
	}
	return d
}

func (s Schedule) dayOfWeek(t time.Time) bool {
	wd := int(t.Weekday()) + 1 // EventBridge counts 1-7 from Sunday
	last := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	switch {
	case s.sets[fDow][wd]:
		return true
	case s.dow.last && wd == 7:
		return true
	case s.dow.lastOf == wd && t.Day()+7 > last:
		return true
	case s.dow.nthOf == wd && (t.Day()-1)/7+1 == s.dow.nth:
		return true
	}
	return false
}

// gapStart is a fixed start, so that MaxGap is a function of the expression
// alone (the same answer on every machine and every day).
var gapStart = time.Date(2027, time.January, 1, 0, 0, 0, 0, time.UTC)

// MaxGap is the longest time between two runs (for a cron, between the runs
// of the two years from gapStart, so that yearly and leap-day patterns show
// their real gap; one run in two years counts as a two-year gap). A cron whose year field ends its runs has no bound: that is
// an error, as the images would go stale for good.
func (s Schedule) MaxGap() (time.Duration, error) {
	if s.Rate {
		return s.Every, nil
	}
	if s.Fields[fYear] != "*" {
		return 0, fmt.Errorf("the year field %q ends the daily runs in some year; use * so that the images keep being rebuilt", s.Fields[fYear])
	}
	var first, prev time.Time
	var gap time.Duration
	end := gapStart.AddDate(2, 0, 0)
	for t := gapStart; t.Before(end); t = t.Add(time.Minute) {
		// Skip whole hours and days that cannot match: the minute loop
		// over two years is a million steps otherwise.
		if !s.sets[fMonth][int(t.Month())] {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Minute)
			continue
		}
		if !s.sets[fHour][t.Hour()] {
			t = t.Truncate(time.Hour).Add(time.Hour - time.Minute)
			continue
		}
		if !s.matches(t) {
			continue
		}
		if first.IsZero() {
			first = t
		} else if d := t.Sub(prev); d > gap {
			gap = d
		}
		prev = t
	}
	if first.IsZero() {
		return 0, fmt.Errorf("it never runs in the two years from %s", gapStart.Format("2006-01-02"))
	}
	if first.Equal(prev) {
		return end.Sub(gapStart), nil
	}
	return gap, nil
}

// GitHubCron converts the schedule to the 5-field cron of a GitHub schedule
// trigger. Both run in UTC. It returns an error for what GitHub cannot
// express: rate(...), a year other than *, and EventBridge's L, W and #.
//
// Day-of-week numbers differ: EventBridge counts 1-7 from Sunday, cron 0-6
// from Sunday; names (SUN-SAT, JAN-DEC) mean the same in both.
func (s Schedule) GitHubCron() (string, error) {
	if s.Rate {
		return "", fmt.Errorf("schedule %q: only cron(...) expressions convert to a GitHub schedule; write the rate as cron(...)", s.Expr)
	}
	if s.Fields[fYear] != "*" {
		return "", fmt.Errorf("schedule %q: GitHub cannot restrict the year (%s); use *", s.Expr, s.Fields[fYear])
	}
	for _, d := range []daySpec{s.dom, s.dow} {
		if d.last || d.lastOf > 0 || d.nearestDay > 0 || d.nth > 0 {
			return "", fmt.Errorf("schedule %q: L, W and # have no GitHub equivalent", s.Expr)
		}
	}
	out := make([]string, 5)
	for i := range out {
		v := s.Fields[i]
		if v == "?" {
			out[i] = "*"
			continue
		}
		var parts []string
		for _, item := range strings.Split(v, ",") {
			parts = append(parts, githubItem(cronFields[i], item, i == fDow))
		}
		out[i] = strings.Join(parts, ",")
	}
	return strings.Join(out, " "), nil
}

// githubItem rewrites one validated list item: day-of-week numbers shift
// down by one, names are upper-cased, and EventBridge's N/S (from N to the
// end of the range) is spelled N-max/S.
func githubItem(spec cronField, item string, dow bool) string {
	rng, step, hasStep := strings.Cut(item, "/")
	conv := func(v string) string {
		if v == "*" {
			return v
		}
		for _, n := range spec.names {
			if strings.EqualFold(v, n) {
				return n
			}
		}
		n, _ := strconv.Atoi(v)
		if dow {
			n--
		}
		return strconv.Itoa(n)
	}
	out := rng
	if a, b, ok := strings.Cut(rng, "-"); ok {
		out = conv(a) + "-" + conv(b)
	} else {
		out = conv(rng)
		if hasStep && rng != "*" {
			hi := spec.hi
			if dow {
				hi--
			}
			out += "-" + strconv.Itoa(hi)
		}
	}
	if hasStep {
		out += "/" + step
	}
	return out
}
