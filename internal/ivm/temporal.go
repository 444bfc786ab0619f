package ivm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Temporal values are integers: days since 1970-01-01 for date,
// microseconds since 1970-01-01 00:00:00 for timestamp (and since the
// Unix epoch, in UTC, for timestamptz), microseconds since midnight for
// time. The calendar is the proleptic Gregorian one with astronomical
// years (1 BC is year 0), as PostgreSQL's.

const (
	usPerSecond = int64(1_000_000)
	usPerMinute = 60 * usPerSecond
	usPerHour   = 60 * usPerMinute
	usPerDay    = 24 * usPerHour
)

var errBadTemporal = errors.New("invalid temporal value")

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func floorDiv64(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func splitMicros(us int64) (days, tod int64) {
	days = floorDiv64(us, usPerDay)
	return days, us - days*usPerDay
}

func dateValue(days int64) Value { return Value{k: kindDate, i: days} }

func dateToTimestamp(v Value) Value {
	if v.k != kindDate {
		return v
	}
	return Value{k: kindTimestamp, form: v.form, i: v.i * usPerDay}
}

func appendYear(dst []byte, y int64) []byte {
	if y <= 0 {
		y = 1 - y // BC; the caller adds " BC"
	}
	s := strconv.FormatInt(y, 10)
	for i := len(s); i < 4; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

func append2(dst []byte, n int64) []byte {
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

func appendYMD(dst []byte, y, m, d int64) []byte {
	dst = appendYear(dst, y)
	dst = append(dst, '-')
	dst = append2(dst, m)
	dst = append(dst, '-')
	return append2(dst, d)
}

// appendClockText writes HH:MM:SS with the fraction of a second as
// PostgreSQL prints it (no trailing zeros, none at all when zero).
func appendClockText(dst []byte, tod int64) []byte {
	dst = append2(dst, tod/usPerHour)
	dst = append(dst, ':')
	dst = append2(dst, tod/usPerMinute%60)
	dst = append(dst, ':')
	dst = append2(dst, tod/usPerSecond%60)
	return appendFraction(dst, tod%usPerSecond)
}

func appendFraction(dst []byte, us int64) []byte {
	if us == 0 {
		return dst
	}
	var f [6]byte
	for i := 5; i >= 0; i-- {
		f[i] = byte('0' + us%10)
		us /= 10
	}
	n := 6
	for n > 0 && f[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, f[:n]...)
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
	y, m, d := civilFromDays(v.i)
	dst = appendYMD(dst, y, m, d)
	if y <= 0 {
		dst = append(dst, " BC"...)
	}
	return dst
}

func appendTimestampText(dst []byte, v Value, tz bool) []byte {
	if v.form != formFinite {
		return appendInfinity(dst, v.form)
	}
	days, tod := splitMicros(v.i)
	y, m, d := civilFromDays(days)
	dst = appendYMD(dst, y, m, d)
	dst = append(dst, ' ')
	dst = appendClockText(dst, tod)
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
		return appendClockText(dst, v.i)
	case kindDate:
		if v.form != formFinite {
			return appendInfinity(dst, v.form)
		}
		y, m, d := civilFromDays(v.i)
		return appendISOYMD(dst, y, m, d)
	}
	if v.form != formFinite {
		return appendInfinity(dst, v.form)
	}
	days, tod := splitMicros(v.i)
	y, m, d := civilFromDays(days)
	dst = appendISOYMD(dst, y, m, d)
	dst = append(dst, 'T')
	dst = appendClockText(dst, tod)
	if v.k == kindTimestamptz {
		dst = append(dst, 'Z')
	}
	return dst
}

func appendISOYMD(dst []byte, y, m, d int64) []byte {
	switch {
	case y > 9999:
		dst = append(dst, '+')
		dst = strconv.AppendInt(dst, y, 10)
	case y < 0:
		dst = append(dst, '-')
		s := strconv.FormatInt(-y, 10)
		for i := len(s); i < 4; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, s...)
	default:
		s := strconv.FormatInt(y, 10)
		for i := len(s); i < 4; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, s...)
	}
	dst = append(dst, '-')
	dst = append2(dst, m)
	dst = append(dst, '-')
	return append2(dst, d)
}

// readDigits reads an unsigned decimal number of at least min digits.
func readDigits(s string, i, minDigits int) (int64, int, bool) {
	j := i
	var n int64
	for j < len(s) && s[j] >= '0' && s[j] <= '9' && j-i < 18 {
		n = n*10 + int64(s[j]-'0')
		j++
	}
	return n, j, j-i >= minDigits
}

// parseYMD reads [+-]Y-MM-DD from s at i.
func parseYMD(s string, i int) (days int64, next int, ok bool) {
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	y, i, ok := readDigits(s, i, 1)
	if !ok || i >= len(s) || s[i] != '-' {
		return 0, i, false
	}
	m, i, ok := readDigits(s, i+1, 1)
	if !ok || i >= len(s) || s[i] != '-' || m < 1 || m > 12 {
		return 0, i, false
	}
	d, i, ok := readDigits(s, i+1, 1)
	if !ok || d < 1 || d > 31 {
		return 0, i, false
	}
	if neg {
		y = -y
	}
	days = daysFromCivil(y, m, d)
	if yy, mm, dd := civilFromDays(days); yy != y || mm != m || dd != d {
		return 0, i, false
	}
	return days, i, true
}

// parseClock reads HH:MM[:SS[.ffffff]] from s at i (fractions beyond
// microseconds are rounded half up, as PostgreSQL does).
func parseClock(s string, i int) (us int64, next int, ok bool) {
	h, i, ok := readDigits(s, i, 1)
	if !ok || i >= len(s) || s[i] != ':' {
		return 0, i, false
	}
	m, i, ok := readDigits(s, i+1, 1)
	if !ok || m > 59 {
		return 0, i, false
	}
	var sec, frac int64
	if i < len(s) && s[i] == ':' {
		sec, i, ok = readDigits(s, i+1, 1)
		if !ok || sec > 60 {
			return 0, i, false
		}
		if i < len(s) && s[i] == '.' {
			i++
			n := 0
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				if n < 6 {
					frac = frac*10 + int64(s[i]-'0')
				} else if n == 6 && s[i] >= '5' {
					frac++
				}
				n++
				i++
			}
			for ; n < 6; n++ {
				frac *= 10
			}
		}
	}
	us = h*usPerHour + m*usPerMinute + sec*usPerSecond + frac
	if us > usPerDay {
		return 0, i, false
	}
	return us, i, true
}

// parseOffset reads a UTC offset (Z, +HH, +HH:MM, +HHMM, +HH:MM:SS) and
// returns it in seconds east of UTC.
func parseOffset(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	switch strings.ToUpper(s) {
	case "Z", "UTC", "GMT", "+00", "-00":
		return 0, true
	}
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	sign := int64(1)
	if s[0] == '-' {
		sign = -1
	}
	rest := strings.ReplaceAll(s[1:], ":", "")
	var h, m, sec int64
	var err error
	switch len(rest) {
	case 1, 2:
		h, err = strconv.ParseInt(rest, 10, 64)
	case 4:
		h, err = strconv.ParseInt(rest[:2], 10, 64)
		if err == nil {
			m, err = strconv.ParseInt(rest[2:], 10, 64)
		}
	case 6:
		h, err = strconv.ParseInt(rest[:2], 10, 64)
		if err == nil {
			m, err = strconv.ParseInt(rest[2:4], 10, 64)
		}
		if err == nil {
			sec, err = strconv.ParseInt(rest[4:], 10, 64)
		}
	default:
		return 0, false
	}
	if err != nil {
		return 0, false
	}
	return sign * (h*3600 + m*60 + sec), true
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
	days, i, ok := parseYMD(body, 0)
	if !ok || i != len(body) {
		return Value{}, fmt.Errorf("invalid input syntax for type date: %q", s)
	}
	if bc {
		y, m, d := civilFromDays(days)
		days = daysFromCivil(1-y, m, d)
	}
	return dateValue(days), nil
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
	days, i, ok := parseYMD(s, 0)
	if !ok {
		return Value{}, bad()
	}
	var tod int64
	if i < len(s) && (s[i] == ' ' || s[i] == 'T') {
		tod, i, ok = parseClock(s, i+1)
		if !ok {
			return Value{}, bad()
		}
	}
	us := days*usPerDay + tod
	rest := s[i:]
	if tz {
		off, ok := parseOffset(rest)
		if !ok {
			return Value{}, bad()
		}
		us -= off * usPerSecond
	} else if strings.TrimSpace(rest) != "" {
		return Value{}, bad()
	}
	return Value{k: k, i: us}, nil
}

// parseTimeText reads HH:MM[:SS[.f]].
func parseTimeText(s string) (Value, error) {
	s = strings.TrimSpace(s)
	us, i, ok := parseClock(s, 0)
	if !ok || i != len(s) {
		return Value{}, fmt.Errorf("invalid input syntax for type time: %q", s)
	}
	return Value{k: kindTime, i: us}, nil
}

// Debezium's stand-ins for PostgreSQL's infinite dates and timestamps in
// isostring mode (see internal/dbzjson's DEBEZIUM.md).
const (
	dbzDatePosInf      = "+5877611-06-21Z"
	dbzDateNegInf      = "-5877611-06-22Z"
	dbzTimestampPosInf = "+292278994-08-16T23:00:00Z"
	dbzTimestampNegInf = "-292275055-05-16T23:00:00Z"
)

// parseDbzDate reads Debezium's isostring date "YYYY-MM-DDZ".
func parseDbzDate(s string) (Value, error) {
	switch s {
	case dbzDatePosInf:
		return Value{k: kindDate, form: formPosInf}, nil
	case dbzDateNegInf:
		return Value{k: kindDate, form: formNegInf}, nil
	}
	days, i, ok := parseYMD(s, 0)
	if !ok || i != len(s)-1 || s[i] != 'Z' {
		return Value{}, fmt.Errorf("date %q: %w", s, errBadTemporal)
	}
	return dateValue(days), nil
}

// parseDbzTime reads "HH:MM:SS[.f]Z".
func parseDbzTime(s string) (Value, error) {
	us, i, ok := parseClock(s, 0)
	if !ok || i != len(s)-1 || s[i] != 'Z' {
		return Value{}, fmt.Errorf("time %q: %w", s, errBadTemporal)
	}
	return Value{k: kindTime, i: us}, nil
}

// parseDbzTimestamp reads "YYYY-MM-DDTHH:MM:SS[.f]Z" (timestamp and
// timestamptz alike) and the infinities.
func parseDbzTimestamp(s string, k kind) (Value, error) {
	switch s {
	case "infinity", dbzTimestampPosInf:
		return Value{k: k, form: formPosInf}, nil
	case "-infinity", dbzTimestampNegInf:
		return Value{k: k, form: formNegInf}, nil
	}
	days, i, ok := parseYMD(s, 0)
	if !ok || i >= len(s) || s[i] != 'T' {
		return Value{}, fmt.Errorf("timestamp %q: %w", s, errBadTemporal)
	}
	tod, i, ok := parseClock(s, i+1)
	if !ok || i >= len(s) {
		return Value{}, fmt.Errorf("timestamp %q: %w", s, errBadTemporal)
	}
	us := days*usPerDay + tod
	if s[i:] != "Z" {
		off, ok := parseOffset(s[i:])
		if !ok {
			return Value{}, fmt.Errorf("timestamp %q: %w", s, errBadTemporal)
		}
		us -= off * usPerSecond
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
	days, tod := splitMicros(v.i)
	y, m, d := civilFromDays(days)
	switch unit {
	case "microseconds":
		return v, nil
	case "milliseconds":
		return Value{k: v.k, i: days*usPerDay + tod - tod%1000}, nil
	case "second":
		return Value{k: v.k, i: days*usPerDay + tod - tod%usPerSecond}, nil
	case "minute":
		return Value{k: v.k, i: days*usPerDay + tod - tod%usPerMinute}, nil
	case "hour":
		return Value{k: v.k, i: days*usPerDay + tod - tod%usPerHour}, nil
	case "day":
		return Value{k: v.k, i: days * usPerDay}, nil
	case "week":
		// Weeks start on Monday.
		back := (dow(days) + 6) % 7
		return Value{k: v.k, i: (days - back) * usPerDay}, nil
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
	return Value{k: v.k, i: daysFromCivil(y, m, d) * usPerDay}, nil
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
		days, tod = splitMicros(v.i)
	}
	secUs := tod % usPerMinute
	switch field {
	case "microseconds":
		return dec{c: secUs}, nil
	case "milliseconds":
		return dec{c: secUs, scale: 3}, nil
	case "second":
		return dec{c: secUs, scale: 6}, nil
	case "minute":
		return decInt(tod / usPerMinute % 60), nil
	case "hour":
		return decInt(tod / usPerHour), nil
	case "epoch":
		if v.k == kindDate {
			return decInt(days * 86400), nil
		}
		if v.k == kindTime {
			return dec{c: tod, scale: 6}, nil
		}
		return dec{c: v.i, scale: 6}, nil
	}
	y, m, d := civilFromDays(days)
	switch field {
	case "day":
		return decInt(d), nil
	case "month":
		return decInt(m), nil
	case "quarter":
		return decInt((m-1)/3 + 1), nil
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
		return decInt(days - daysFromCivil(y, 1, 1) + 1), nil
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
		_, tod = splitMicros(v.i)
	}
	sec := float64(tod / usPerSecond % 60)
	fsec := float64(tod % usPerSecond)
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
	secs := floorDiv64(v.i, usPerSecond)
	frac := v.i - secs*usPerSecond
	if v.k == kindTimestamptz {
		_, off := time.Unix(secs, 0).In(loc).Zone()
		return Value{k: kindTimestamp, i: (secs+int64(off))*usPerSecond + frac}
	}
	return Value{k: kindTimestamptz, i: localToUTC(loc, secs)*usPerSecond + frac}
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
