// Package program is what every long-running Go program here (go-server, control-plane)
// does the same way: a --log-level setting, slog on stderr at that level, and a run
// that ends when the program gets SIGTERM or SIGINT.
//
//	var logLevel string
//	var table = settings.Table{..., program.LogLevel(&logLevel)}
//
//	func main() {
//		table.ParseOrExit()
//		program.Run("go-server", logLevel, run) // run(ctx): serve until ctx ends
//	}
package program

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"grpctest/go-common/settings"
)

// levels are --log-level's choices, the names py-server takes (in any case).
var levels = map[string]slog.Level{
	"DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo, "WARNING": slog.LevelWarn, "ERROR": slog.LevelError,
}

// LogLevel is the --log-level row of a program's settings table: DEBUG, INFO, WARNING
// or ERROR in any case, INFO by default.
func LogLevel(p *string) settings.Setting {
	return settings.Setting{Name: "log-level", Value: settings.ChoiceIgnoringCase(p, "DEBUG", "INFO", "WARNING", "ERROR"),
		Default: "INFO", Help: "log level, in any case"}
}

// Run logs with slog on stderr at level (one of LogLevel's choices) and calls run with a
// context that ends on SIGTERM or SIGINT; if run returns an error, it logs
// "NAME failed" with it and exits 1.
func Run(name, level string, run func(context.Context) error) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: levels[strings.ToUpper(level)]})))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx)
	stop()
	if err != nil {
		slog.Error(name+" failed", "error", err)
		os.Exit(1)
	}
}
