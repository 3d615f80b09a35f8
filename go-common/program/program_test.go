package program

import (
	"log/slog"
	"testing"

	"grpctest/go-common/settings"
)

func TestEveryLogLevelIsAnSlogLevel(t *testing.T) {
	var level string
	table := settings.Table{LogLevel(&level)}
	for name, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "Warning": slog.LevelWarn, "ERROR": slog.LevelError} {
		if err := table.Parse([]string{"--log-level", name}); err != nil {
			t.Fatal(err)
		}
		if got, ok := levels[level]; !ok || got != want {
			t.Errorf("%q: %q is %v (known: %v), want %v", name, level, got, ok, want)
		}
	}
}
