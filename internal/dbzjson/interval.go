package dbzjson

import (
	"math"
	"strconv"
	"strings"
)

// daysPerMonthAvg is MicroDuration.DAYS_PER_MONTH_AVG: 365.25 / 12.
const daysPerMonthAvg = 365.25 / 12.0

// appendInterval writes an interval as io.debezium.time.MicroDuration
// (interval.handling.mode=numeric): the JDBC driver's PGInterval fields
// combined as MicroDuration.durationMicros does, in double arithmetic with
// months of 365.25/12 days, truncated to a long.
func appendInterval(dst []byte, s string) ([]byte, error) {
	iv, ok := parseInterval(s)
	if !ok {
		return dst, errSyntax
	}
	return appendInt(dst, iv.micros()), nil
}

type interval struct {
	years, months, days, hours, minutes int64
	seconds                             float64
}

func (iv interval) micros() int64 {
	// Java: ((years * 12) + months) * daysPerMonthAvg + days, then
	// (((days * 24 + hours) * 60) + minutes) * 60 + seconds, then * 1e6.
	// The float64() conversions keep each step rounded as Java rounds it
	// (no fused multiply-add).
	numberOfDays := float64(float64(iv.years*12+iv.months)*daysPerMonthAvg) + float64(iv.days)
	x := float64(numberOfDays*24) + float64(iv.hours)
	x = float64(x*60) + float64(iv.minutes)
	x = float64(x*60) + iv.seconds
	return javaLong(float64(x * 1e6))
}

// javaLong converts like Java's (long) cast: toward zero, NaN to 0,
// saturating at the ends of the range.
func javaLong(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// parseInterval reads IntervalStyle=postgres output: "1 year 2 mons
// -3 days +04:05:06.789", any part optional, "00:00:00" for zero. A sign
// before the clock applies to hours, minutes and seconds, as in PGInterval.
// Seconds are whole seconds plus micros/1e6, which is the double PGInterval
// returns for them.
func parseInterval(s string) (interval, bool) {
	var iv interval
	if s == "" {
		return iv, false
	}
	for s != "" {
		var tok string
		tok, s, _ = strings.Cut(s, " ")
		if strings.IndexByte(tok, ':') >= 0 {
			if !parseIntervalClock(tok, &iv) {
				return iv, false
			}
			continue
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(tok, "+"), 10, 64)
		if err != nil {
			return iv, false
		}
		var unit string
		unit, s, _ = strings.Cut(s, " ")
		switch unit {
		case "year", "years":
			iv.years += n
		case "mon", "mons":
			iv.months += n
		case "day", "days":
			iv.days += n
		default:
			return iv, false
		}
	}
	return iv, true
}

func parseIntervalClock(tok string, iv *interval) bool {
	sign := int64(1)
	switch tok[0] {
	case '-':
		sign = -1
		tok = tok[1:]
	case '+':
		tok = tok[1:]
	}
	hs, rest, ok1 := strings.Cut(tok, ":")
	ms, ss, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return false
	}
	h, err1 := strconv.ParseInt(hs, 10, 64)
	m, err2 := strconv.ParseInt(ms, 10, 64)
	whole, fracs, _ := strings.Cut(ss, ".")
	sec, err3 := strconv.ParseInt(whole, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || sec < 0 || len(fracs) > 6 || !allDigits(fracs) {
		return false
	}
	var micros int64
	for i := 0; i < 6; i++ {
		micros *= 10
		if i < len(fracs) {
			micros += int64(fracs[i] - '0')
		}
	}
	seconds := float64(sec) + float64(micros)/1e6
	iv.hours += sign * h
	iv.minutes += sign * m
	iv.seconds += float64(sign) * seconds
	return true
}
