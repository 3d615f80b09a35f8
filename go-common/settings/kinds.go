package settings

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Value is where a setting's value goes and what text it accepts: one of the kinds
// below (the same as the Python programs').
type Value struct {
	kind   string // for --help: "whole number"
	want   string // for a bad value: "a whole number"
	quoted bool   // --help quotes the default (text)
	isBool bool   // a bare --name means true
	parse  func(text string) bool
}

// typed is a Value that stores parse's result in p; parse reports false for text it
// does not accept.
func typed[T any](p *T, kind, want string, parse func(string) (T, bool)) Value {
	return Value{kind: kind, want: want, parse: func(text string) bool {
		v, ok := parse(text)
		if ok {
			*p = v
		}
		return ok
	}}
}

// Text is any text.
func Text(p *string) Value {
	v := typed(p, "text", "text", func(s string) (string, bool) { return s, true })
	v.quoted = true
	return v
}

// Path is a file's path (any text; the program checks the file).
func Path(p *string) Value {
	v := Text(p)
	v.kind = "path"
	return v
}

// Int is a whole number, as strconv.Atoi reads it.
func Int(p *int) Value {
	return typed(p, "whole number", "a whole number", func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil
	})
}

// Number is a decimal number ("1.5").
func Number(p *float64) Value {
	return typed(p, "number", "a number", parseNumber)
}

func parseNumber(s string) (float64, bool) {
	n, err := strconv.ParseFloat(s, 64)
	return n, err == nil && !math.IsNaN(n) && !math.IsInf(n, 0)
}

// duration is a duration as Go writes one, one or more "number unit" parts ("500ms",
// "1m30s"), with the units ms, s, m and h only (as the Python programs read it).
var duration = regexp.MustCompile(`^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:ms|s|m|h))+$`)

// Seconds is a duration: a plain number of seconds ("5", "0.5") or a duration with the
// units ms, s, m or h ("500ms", "1.5s", "1m30s").
func Seconds(p *time.Duration) Value {
	return typed(p, "seconds", "seconds (like 5, 0.5 or 500ms)", parseSeconds)
}

// ShowSeconds is how a message shows a duration: in seconds, "0.5s", "90s" (as the Python
// programs show theirs, grpctest_common.settings.show_seconds).
func ShowSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'g', 6, 64) + "s"
}

func parseSeconds(s string) (time.Duration, bool) {
	if n, ok := parseNumber(s); ok {
		if math.Abs(n*float64(time.Second)) > math.MaxInt64 {
			return 0, false
		}
		return time.Duration(n * float64(time.Second)), true
	}
	if !duration.MatchString(s) {
		return 0, false
	}
	d, err := time.ParseDuration(s) // (an error beyond about 290 years)
	return d, err == nil
}

// Bool is a boolean as strconv.ParseBool reads it (1 t T TRUE true True, 0 f F FALSE
// false False); a bare --name means true.
func Bool(p *bool) Value {
	v := typed(p, "boolean", "one of 0 1 F FALSE False T TRUE True f false t true", func(s string) (bool, bool) {
		b, err := strconv.ParseBool(s)
		return b, err == nil
	})
	v.isBool = true
	return v
}

// Choice is one of choices, exactly as written.
func Choice(p *string, choices ...string) Value {
	return choice(p, choices, func(a, b string) bool { return a == b })
}

// ChoiceIgnoringCase is one of choices in any case ("debug" for DEBUG); p gets the
// choice as declared.
func ChoiceIgnoringCase(p *string, choices ...string) Value {
	return choice(p, choices, strings.EqualFold)
}

func choice(p *string, choices []string, same func(a, b string) bool) Value {
	v := typed(p, strings.Join(choices, "|"), "one of "+strings.Join(choices, ", "), func(s string) (string, bool) {
		i := slices.IndexFunc(choices, func(c string) bool { return same(c, s) })
		if i < 0 {
			return "", false
		}
		return choices[i], true
	})
	v.quoted = true
	return v
}
