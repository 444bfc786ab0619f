package ivm

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cdcq/cdcq/internal/civil"
)

// Temporal values are integers: days since 1970-01-01 for date,
// microseconds since 1970-01-01 00:00:00 for timestamp (and since the
// Unix epoch, in UTC, for timestamptz), microseconds since midnight for
// time. The calendar is the proleptic Gregorian one with astronomical
// years (1 BC is year 0), as PostgreSQL's; its arithmetic and the text of
// dates and clocks are internal/civil's.

var errBadTemporal = errors.New("invalid temporal value")

func dateValue(days int64) Value { return Value{k: kindDate, i: days} }

func dateToTimestamp(v Value) Value {
	if v.k != kindDate {
		return v
	}
	return Value{k: kindTimestamp, form: v.form, i: v.i * civil.MicrosPerDay}
}

func appendInfinity(dst []byte, form uint8) []byte {
	if form == formPosInf {
		return append(dst, "infinity"...)
	}
	return append(dst, "-infinity"...)
}

func appendDateText(dst []byte, v Value) []byte {
	if v.form != formFinite {
		return appendInfinity(dst, v.form)
	}
	y, m, d := civil.Date(v.i)
	dst = civil.AppendPostgresDate(dst, y, m, d)
	if y <= 0 {
		dst = append(dst, " BC"...)
	}
	return dst
}

func appendTimestampText(dst []byte, v Value, tz bool) []byte {
	if v.form != formFinite {
		return appendInfinity(dst, v.form)
	}
	days, tod := civil.SplitMicros(v.i)
	y, m, d := civil.Date(days)
	dst = civil.AppendPostgresDate(dst, y, m, d)
	dst = append(dst, ' ')
	dst = civil.AppendClock(dst, tod, 0)
	if tz {
		dst = append(dst, "+00"...)
	}
	if y <= 0 {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendISO writes the ISO-8601 forms Flink's JSON format uses: date
// "2024-01-02", time "04:05:06.789", timestamp "2024-01-02T03:04:05.123",
// timestamptz "2024-01-02T03:04:05.123Z" (fractions without trailing
// zeros). Years outside 0000-9999 get a sign, as java.time writes them.
func appendISO(dst []byte, v Value) []byte {
	switch v.k {
	case kindTime:
		return civil.AppendClock(dst, v.i, 0)
	case kindDate:
		if v.form != formFinite {
			return appendInfinity(dst, v.form)
		}
		y, m, d := civil.Date(v.i)
		return civil.AppendISODate(dst, y, m, d)
	}
	if v.form != formFinite {
		return appendInfinity(dst, v.form)
	}
	days, tod := civil.SplitMicros(v.i)
	y, m, d := civil.Date(days)
	dst = civil.AppendISODate(dst, y, m, d)
	dst = append(dst, 'T')
	dst = civil.AppendClock(dst, tod, 0)
	if v.k == kindTimestamptz {
		dst = append(dst, 'Z')
	}
	return dst
}

func infinityForm(s string) (uint8, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "infinity", "+infinity":
		return formPosInf, true
	case "-infinity":
		return formNegInf, true
	}
	return 0, false
}

// parseDateText reads PostgreSQL date input in ISO form (YYYY-MM-DD, with
// an optional " BC"), 'epoch' and the infinities.
func parseDateText(s string) (Value, error) {
	s = strings.TrimSpace(s)
	if f, ok := infinityForm(s); ok {
		return Value{k: kindDate, form: f}, nil
	}
	if strings.EqualFold(s, "epoch") {
		return dateValue(0), nil
	}
	body, bc := strings.CutSuffix(s, " BC")
	y, m, d, rest, ok := civil.ParseDate(body)
	if bc {
		y = 1 - y
	}
	if !ok || rest != "" || !civil.ValidDate(y, m, d) {
		return Value{}, fmt.Errorf("invalid input syntax for type date: %q", s)
	}
	return dateValue(civil.Days(y, m, d)), nil
}

// parseDays reads a date that exists at the start of s (civil.ParseDate)
// as a day number, and returns the text after it.
func parseDays(s string) (int64, string, bool) {
	y, m, d, rest, ok := civil.ParseDate(s)
	if !ok || !civil.ValidDate(y, m, d) {
		return 0, "", false
	}
	return civil.Days(y, m, d), rest, true
}

// parseTimestampText reads ISO timestamp input: YYYY-MM-DD[( |T)HH:MM[:SS[.f]]]
// with, for timestamptz, an offset (Z, +HH[:MM]) that is required.
func parseTimestampText(s string, tz bool) (Value, error) {
	k := kindTimestamp
	if tz {
		k = kindTimestamptz
	}
	s = strings.TrimSpace(s)
	if f, ok := infinityForm(s); ok {
		return Value{k: k, form: f}, nil
	}
	if strings.EqualFold(s, "epoch") {
		return Value{k: k}, nil
	}
	bad := func() error {
		name := "timestamp"
		if tz {
			name = "timestamptz"
		}
		return fmt.Errorf("invalid input syntax for type %s: %q", name, s)
	}
	days, rest, ok := parseDays(s)
	if !ok {
		return Value{}, bad()
	}
	var tod int64
	if rest != "" && (rest[0] == ' ' || rest[0] == 'T') {
		tod, rest, ok = civil.ParseClock(rest[1:])
		if !ok {
			return Value{}, bad()
		}
	}
	us := days*civil.MicrosPerDay + tod
	if tz {
		off, ok := civil.ParseOffset(rest)
		if !ok {
			return Value{}, bad()
		}
		us -= off * civil.MicrosPerSecond
	} else if strings.TrimSpace(rest) != "" {
		return Value{}, bad()
	}
	return Value{k: k, i: us}, nil
}

// parseTimeText reads HH:MM[:SS[.f]].
func parseTimeText(s string) (Value, error) {
	s = strings.TrimSpace(s)
	us, rest, ok := civil.ParseClock(s)
	if !ok || rest != "" {
		return Value{}, fmt.Errorf("invalid input syntax for type time: %q", s)
	}
	return Value{k: kindTime, i: us}, nil
}

// Debezium's stand-ins for PostgreSQL's infinite dates and timestamps in
// isostring mode (see internal/dbzjson's DEBEZIUM.md): Debezium 3.6 writes
// a streamed date's infinity as "-5877611-06-21Z" (sic) and the snapshot's
// as pgjdbc's "+292278994-08-16Z"; the older forms are what cdcq's
// embedded capture wrote before it was checked against Debezium 3.6, and
// may still be on topics.
var (
	dbzDateInfinities = map[string]uint8{
		"-5877611-06-21Z":   formPosInf,
		"+292278994-08-16Z": formPosInf,
		"+5877611-06-21Z":   formPosInf,
		"-5877611-06-22Z":   formNegInf,
		"+292269055-12-02Z": formNegInf,
	}
	dbzTimestampInfinities = map[string]uint8{
		"+294247-01-10T04:00:25.2Z":  formPosInf,
		"-290308-12-21T19:59:27.6Z":  formNegInf,
		"+292278994-08-16T23:00:00Z": formPosInf,
		"-292275055-05-16T23:00:00Z": formNegInf,
	}
)

// parseDbzDate reads Debezium's isostring date "YYYY-MM-DDZ".
func parseDbzDate(s string) (Value, error) {
	if f, ok := dbzDateInfinities[s]; ok {
		return Value{k: kindDate, form: f}, nil
	}
	days, rest, ok := parseDays(s)
	if !ok || rest != "Z" {
		return Value{}, fmt.Errorf("date %q: %w", s, errBadTemporal)
	}
	return dateValue(days), nil
}

// parseDbzTime reads "HH:MM:SS[.f]Z".
func parseDbzTime(s string) (Value, error) {
	us, rest, ok := civil.ParseClock(s)
	if !ok || rest != "Z" {
		return Value{}, fmt.Errorf("time %q: %w", s, errBadTemporal)
	}
	return Value{k: kindTime, i: us}, nil
}

// parseDbzTimestamp reads "YYYY-MM-DDTHH:MM:SS[.f]Z" (timestamp and
// timestamptz alike) and the infinities.
func parseDbzTimestamp(s string, k kind) (Value, error) {
	switch s {
	case "infinity":
		return Value{k: k, form: formPosInf}, nil
	case "-infinity":
		return Value{k: k, form: formNegInf}, nil
	}
	if f, ok := dbzTimestampInfinities[s]; ok {
		return Value{k: k, form: f}, nil
	}
	days, rest, ok := parseDays(s)
	if !ok || rest == "" || rest[0] != 'T' {
		return Value{}, fmt.Errorf("timestamp %q: %w", s, errBadTemporal)
	}
	tod, rest, ok := civil.ParseClock(rest[1:])
	if !ok || rest == "" {
		return Value{}, fmt.Errorf("timestamp %q: %w", s, errBadTemporal)
	}
	us := days*civil.MicrosPerDay + tod
	if rest != "Z" {
		off, ok := civil.ParseOffset(rest)
		if !ok {
			return Value{}, fmt.Errorf("timestamp %q: %w", s, errBadTemporal)
		}
		us -= off * civil.MicrosPerSecond
	}
	return Value{k: k, i: us}, nil
}

// isoWeek returns the ISO 8601 year and week of a date.
func isoWeek(days int64) (year, week int64) {
	t := time.Unix(days*86400, 0).UTC()
	y, w := t.ISOWeek()
	return int64(y), int64(w)
}

// dow returns 0 (Sunday) to 6 (Saturday).
func dow(days int64) int64 {
	// 1970-01-01 was a Thursday.
	return ((days % 7) + 7 + 4) % 7
}

// truncTimestamp is date_trunc(unit, timestamp) for the canonical units
// sqlplan passes.
func truncTimestamp(unit string, v Value) (Value, error) {
	if v.form != formFinite {
		return v, nil
	}
	days, tod := civil.SplitMicros(v.i)
	y, m, d := civil.Date(days)
	switch unit {
	case "microseconds":
		return v, nil
	case "milliseconds":
		return Value{k: v.k, i: days*civil.MicrosPerDay + tod - tod%1000}, nil
	case "second":
		return Value{k: v.k, i: days*civil.MicrosPerDay + tod - tod%civil.MicrosPerSecond}, nil
	case "minute":
		return Value{k: v.k, i: days*civil.MicrosPerDay + tod - tod%civil.MicrosPerMinute}, nil
	case "hour":
		return Value{k: v.k, i: days*civil.MicrosPerDay + tod - tod%civil.MicrosPerHour}, nil
	case "day":
		return Value{k: v.k, i: days * civil.MicrosPerDay}, nil
	case "week":
		// Weeks start on Monday.
		back := (dow(days) + 6) % 7
		return Value{k: v.k, i: (days - back) * civil.MicrosPerDay}, nil
	case "month":
		d = 1
	case "quarter":
		m, d = (m-1)/3*3+1, 1
	case "year":
		m, d = 1, 1
	case "decade":
		if y > 0 {
			y = y / 10 * 10
		} else {
			y = -((8 - (y - 1)) / 10 * 10)
		}
		m, d = 1, 1
	case "century":
		if y > 0 {
			y = (y+99)/100*100 - 99
		} else {
			y = -((99 - (y - 1)) / 100 * 100) + 1
		}
		m, d = 1, 1
	case "millennium":
		if y > 0 {
			y = (y+999)/1000*1000 - 999
		} else {
			y = -((999 - (y - 1)) / 1000 * 1000) + 1
		}
		m, d = 1, 1
	default:
		return Value{}, fmt.Errorf("unit %q not supported by date_trunc", unit)
	}
	return Value{k: v.k, i: civil.Days(y, m, d) * civil.MicrosPerDay}, nil
}

// extractFields lists, per kind of argument, the fields extract supports
// here; others are refused when the query is compiled.
var extractFields = map[kind]map[string]bool{
	kindTimestamp: set("microseconds", "milliseconds", "second", "minute", "hour", "day", "month", "quarter",
		"year", "decade", "century", "millennium", "dow", "isodow", "doy", "week", "isoyear", "epoch"),
	kindDate: set("day", "month", "quarter", "year", "decade", "century", "millennium", "dow", "isodow",
		"doy", "week", "isoyear", "epoch"),
	kindTime:        set("microseconds", "milliseconds", "second", "minute", "hour", "epoch"),
	kindTimestamptz: set("epoch"),
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// extract returns extract(field FROM v) as PostgreSQL 14+ does: a numeric,
// with scale 6 for second and epoch of times and timestamps and 3 for
// milliseconds.
func extract(field string, v Value) (dec, error) {
	if v.form != formFinite {
		// PostgreSQL gives ±Infinity for fields that grow with time and
		// NULL for the others; only the monotonic ones are kept here.
		switch field {
		case "year", "decade", "century", "millennium", "isoyear", "epoch":
			return dec{form: v.form}, nil
		}
		return dec{}, errInfiniteField
	}
	var days, tod int64
	switch v.k {
	case kindDate:
		days = v.i
	case kindTime:
		tod = v.i
	default:
		days, tod = civil.SplitMicros(v.i)
	}
	secUs := tod % civil.MicrosPerMinute
	switch field {
	case "microseconds":
		return dec{c: secUs}, nil
	case "milliseconds":
		return dec{c: secUs, scale: 3}, nil
	case "second":
		return dec{c: secUs, scale: 6}, nil
	case "minute":
		return decInt(tod / civil.MicrosPerMinute % 60), nil
	case "hour":
		return decInt(tod / civil.MicrosPerHour), nil
	case "epoch":
		if v.k == kindDate {
			return decInt(days * 86400), nil
		}
		if v.k == kindTime {
			return dec{c: tod, scale: 6}, nil
		}
		return dec{c: v.i, scale: 6}, nil
	}
	y, m, d := civil.Date(days)
	switch field {
	case "day":
		return decInt(int64(d)), nil
	case "month":
		return decInt(int64(m)), nil
	case "quarter":
		return decInt(int64((m-1)/3 + 1)), nil
	case "year":
		if y <= 0 {
			return decInt(y - 1), nil
		}
		return decInt(y), nil
	case "decade":
		if y >= 0 {
			return decInt(y / 10), nil
		}
		return decInt(-((8 - (y - 1)) / 10)), nil
	case "century":
		if y > 0 {
			return decInt((y + 99) / 100), nil
		}
		return decInt(-((99 - (y - 1)) / 100)), nil
	case "millennium":
		if y > 0 {
			return decInt((y + 999) / 1000), nil
		}
		return decInt(-((999 - (y - 1)) / 1000)), nil
	case "dow":
		return decInt(dow(days)), nil
	case "isodow":
		w := dow(days)
		if w == 0 {
			w = 7
		}
		return decInt(w), nil
	case "doy":
		return decInt(days - civil.Days(y, 1, 1) + 1), nil
	case "week":
		_, w := isoWeek(days)
		return decInt(w), nil
	case "isoyear":
		iy, _ := isoWeek(days)
		if iy <= 0 {
			return decInt(iy - 1), nil
		}
		return decInt(iy), nil
	}
	return dec{}, fmt.Errorf("unit %q not supported", field)
}

var errInfiniteField = errors.New("field of an infinite value is NULL")

// datePart returns date_part(field, v) computed as PostgreSQL does, in
// double precision arithmetic (which can differ in the last digit from the
// exact extract converted to double).
func datePart(field string, v Value) (float64, error) {
	if v.form != formFinite {
		d, err := extract(field, v)
		if err != nil {
			return 0, err
		}
		return decToFloat(d), nil
	}
	tod := v.i
	if v.k != kindTime {
		_, tod = civil.SplitMicros(v.i)
	}
	sec := float64(tod / civil.MicrosPerSecond % 60)
	fsec := float64(tod % civil.MicrosPerSecond)
	switch field {
	case "microseconds":
		return sec*1000000.0 + fsec, nil
	case "milliseconds":
		return sec*1000.0 + fsec/1000.0, nil
	case "second":
		return sec + fsec/1000000.0, nil
	case "epoch":
		switch v.k {
		case kindDate:
			return float64(v.i * 86400), nil
		case kindTime:
			return float64(v.i) / 1000000.0, nil
		}
		return float64(v.i) / 1000000.0, nil
	}
	d, err := extract(field, v)
	if err != nil {
		return 0, err
	}
	return decToFloat(d), nil
}

// atTimeZone converts between timestamptz and a zone's wall-clock
// timestamp: timezone(zone, timestamptz) gives the local time in zone;
// timezone(zone, timestamp) reads the timestamp as local time in zone.
func atTimeZone(loc *time.Location, v Value) Value {
	if v.form != formFinite {
		if v.k == kindTimestamptz {
			return Value{k: kindTimestamp, form: v.form}
		}
		return Value{k: kindTimestamptz, form: v.form}
	}
	secs := civil.FloorDiv(v.i, civil.MicrosPerSecond)
	frac := v.i - secs*civil.MicrosPerSecond
	if v.k == kindTimestamptz {
		_, off := time.Unix(secs, 0).In(loc).Zone()
		return Value{k: kindTimestamp, i: (secs+int64(off))*civil.MicrosPerSecond + frac}
	}
	return Value{k: kindTimestamptz, i: localToUTC(loc, secs)*civil.MicrosPerSecond + frac}
}

// localToUTC returns the instant (Unix seconds) of the wall-clock time
// local (seconds since 1970-01-01 00:00 local) in loc, resolving daylight
// saving changes as PostgreSQL's DetermineTimeZoneOffset does: of the
// offsets in force a day before and a day after, an offset that maps back
// to the same wall-clock time wins (both do in an overlap); otherwise (a
// gap) either may be taken; in both cases the later instant is chosen.
func localToUTC(loc *time.Location, local int64) int64 {
	offsetAt := func(u int64) int64 {
		_, off := time.Unix(u, 0).In(loc).Zone()
		return int64(off)
	}
	before := local - offsetAt(local-86400)
	after := local - offsetAt(local+86400)
	validBefore := before+offsetAt(before) == local
	validAfter := after+offsetAt(after) == local
	switch {
	case validBefore && !validAfter:
		return before
	case validAfter && !validBefore:
		return after
	}
	return max(before, after)
}
