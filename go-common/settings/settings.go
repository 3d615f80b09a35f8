// Package settings builds a program's flags from one declared table, the same rules as
// the Python programs' (grpctest_common.settings).
//
// A row is one setting: the flag -name (or --name) falls back to the environment
// variable GRPCTEST_NAME (dashes become underscores, upper case), then to the row's
// default. An empty variable counts as unset. A bad value, given as a flag or in the
// environment, is a usage error ("error: MESSAGE", the usage, exit code 2) worded as
//
//	--count: want a whole number, got "abc"
//	GRPCTEST_COUNT (for --count): want a whole number, got "abc"
//
// Range checks (a port in 0..65535, a count of at least 1) stay with the program, after
// Parse, reported with Usagef. --help lists every setting with its environment variable
// and its default.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Setting is one row of a program's table.
type Setting struct {
	Name    string // the flag without dashes, e.g. "resume-attempts"
	Value   Value  // where the value goes and what it accepts: Int(&n), Seconds(&d), ...
	Default string // written as a user would write it ("5", "500ms"); "" for none
	Help    string
}

// Table is a program's settings, declared once.
type Table []Setting

// UsageError is a bad flag or setting: Message says which and why.
type UsageError struct{ Message string }

func (e *UsageError) Error() string { return e.Message }

// Env is the environment variable a setting falls back to: GRPCTEST_RESUME_ATTEMPTS
// for resume-attempts.
func (s Setting) Env() string {
	return "GRPCTEST_" + strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
}

// badValue is the usage error for text that a setting does not accept, from source:
// "--count" or "GRPCTEST_COUNT (for --count)".
func (s Setting) badValue(source, text string) error {
	return &UsageError{fmt.Sprintf("%s: want %s, got %q", source, s.Value.want, text)}
}

// flagValue is a setting as the flag package sees it; a bad value is kept in bad, since
// the flag package words its errors its own way.
type flagValue struct {
	setting Setting
	bad     *error
}

func (f flagValue) String() string   { return f.setting.Default }
func (f flagValue) IsBoolFlag() bool { return f.setting.Value.isBool }

func (f flagValue) Set(text string) error {
	if !f.setting.Value.parse(text) {
		*f.bad = f.setting.badValue("--"+f.setting.Name, text)
		return *f.bad
	}
	return nil
}

// Parse sets every setting of the table from args (the command line without the
// program's name), else from its environment variable, else from its default. It
// returns flag.ErrHelp for -h or --help, and a *UsageError for anything it cannot use.
func (t Table) Parse(args []string) error {
	flags := flag.NewFlagSet("", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // the errors are worded here, and the usage is Usage's
	flags.Usage = func() {}
	var bad error
	for _, s := range t {
		if !s.Value.parse(s.Default) {
			panic(fmt.Sprintf("settings: the default of %s, %q, is not %s", s.Name, s.Default, s.Value.want))
		}
		flags.Var(flagValue{s, &bad}, s.Name, s.Help)
	}
	if err := flags.Parse(args); errors.Is(err, flag.ErrHelp) {
		return err
	} else if bad != nil {
		return bad
	} else if err != nil {
		return &UsageError{err.Error()}
	}
	if flags.NArg() > 0 {
		return &UsageError{fmt.Sprintf("unexpected arguments: %s", strings.Join(flags.Args(), " "))}
	}
	given := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range t {
		if text := os.Getenv(s.Env()); text != "" && !given[s.Name] && !s.Value.parse(text) {
			return s.badValue(fmt.Sprintf("%s (for --%s)", s.Env(), s.Name), text)
		}
	}
	return nil
}

// Usage writes the program's usage: per setting its flag, help, variable and default.
func (t Table) Usage(out io.Writer) {
	_, _ = fmt.Fprintf(out, "Usage of %s (each flag falls back to its environment variable):\n", program())
	for _, s := range t {
		kind := " " + s.Value.kind
		if s.Value.isBool {
			kind = ""
		}
		_, _ = fmt.Fprintf(out, "  --%s%s\n    \t%s (env %s, %s)\n", s.Name, kind, s.Help, s.Env(), s.shownDefault())
	}
}

// shownDefault is the default as --help shows it: quoted where it is text.
func (s Setting) shownDefault() string {
	switch {
	case s.Default == "":
		return "no default"
	case s.Value.quoted:
		return fmt.Sprintf("default %q", s.Default)
	}
	return "default " + s.Default
}

// ParseOrExit parses the command line: on -h or --help it prints the usage and exits 0,
// on a usage error it reports it as Usagef does.
func (t Table) ParseOrExit() {
	err := t.Parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		t.Usage(os.Stderr)
		os.Exit(0)
	}
	if err != nil {
		t.Usagef("%s", err)
	}
}

// Usagef reports a usage error, the flag package's way: "error: MESSAGE", then the
// usage, on stderr, and exit code 2.
func (t Table) Usagef(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	t.Usage(os.Stderr)
	os.Exit(2)
}

// ReadFile is the content of the file a setting names ("" for none: nil), or a
// *UsageError in the Python programs' words: "cannot read --ca PATH: no such file or
// directory".
func ReadFile(flag, path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	content, err := os.ReadFile(path)
	if pathErr := (*fs.PathError)(nil); errors.As(err, &pathErr) {
		return nil, &UsageError{fmt.Sprintf("cannot read %s %s: %v", flag, path, pathErr.Err)}
	}
	return content, err
}

// program is this program's name, as it was called (without its folder).
func program() string {
	return filepath.Base(os.Args[0])
}
