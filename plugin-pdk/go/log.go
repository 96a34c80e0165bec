package pdk

// ABIVersion is the Sandgate ABI this kit implements (ABI.md §2).
const ABIVersion = 1

// LogLevel is a level of the host's `log` function (ABI.md §4.2).
type LogLevel int32

const (
	LevelDebug LogLevel = 0
	LevelInfo  LogLevel = 1
	LevelWarn  LogLevel = 2
	LevelError LogLevel = 3
)

func (l LogLevel) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	}
	return "error"
}

// Log writes one line to the gateway log with the plugin name (and, during a
// hook, the request id). Lines below the gateway's log_level are dropped; text
// past max_log_bytes_per_call is dropped and the call goes on (ABI.md §7.1).
func Log(level LogLevel, msg string) { writeLog(level, msg) }

// LogDebug, LogInfo, LogWarn and LogError are Log at one level.
func LogDebug(msg string) { writeLog(LevelDebug, msg) }
func LogInfo(msg string)  { writeLog(LevelInfo, msg) }
func LogWarn(msg string)  { writeLog(LevelWarn, msg) }
func LogError(msg string) { writeLog(LevelError, msg) }
