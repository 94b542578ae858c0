// Names and version of the results file schema (documented in results/SCHEMA.md). Every name the
// writer and reader use lives here, so the C++ side cannot drift from the document.
#pragma once

#include <cstdint>
#include <string_view>

namespace fabscope::io::schema {

inline constexpr std::int64_t kVersion = 2;
// Files of version 1 (pairs as dense matrices) are still read; see results/SCHEMA.md.
inline constexpr std::int64_t kOldestReadable = 1;

namespace attr {
inline constexpr std::string_view kSchemaVersion = "schema_version";
inline constexpr std::string_view kFabscopeVersion = "fabscope_version";
inline constexpr std::string_view kCreatedUtc = "created_utc";
inline constexpr std::string_view kCommandLine = "command_line";
inline constexpr std::string_view kSuiteText = "suite_text";
inline constexpr std::string_view kNRanks = "n_ranks";
inline constexpr std::string_view kClock = "clock";
inline constexpr std::string_view kClockTscHz = "clock_tsc_hz";
inline constexpr std::string_view kComplete = "complete";
inline constexpr std::string_view kUnits = "units";
inline constexpr std::string_view kBenchmark = "benchmark";
inline constexpr std::string_view kName = "name";
inline constexpr std::string_view kTransport = "transport";
inline constexpr std::string_view kLabel = "label";
inline constexpr std::string_view kIters = "iters";
inline constexpr std::string_view kWarmup = "warmup";
inline constexpr std::string_view kStartedUtc = "started_utc";
inline constexpr std::string_view kFinishedUtc = "finished_utc";
inline constexpr std::string_view kWallSeconds = "wall_seconds";
inline constexpr std::string_view kRoundsTotal = "rounds_total";
inline constexpr std::string_view kRoundsDone = "rounds_done";
inline constexpr std::string_view kSchedule = "schedule";
inline constexpr std::string_view kStatusNames = "status_names";
inline constexpr std::string_view kLayout = "layout";  // pairs: "rows" (version 2)
inline constexpr std::string_view kKeepSamples = "keep_samples";
inline constexpr std::string_view kLatQuantiles = "lat_quantiles";
inline constexpr std::string_view kBwCodes = "bw_codes";
inline constexpr std::string_view kRowsDone = "rows_done";
inline constexpr std::string_view kSamplesDone = "samples_done";
inline constexpr std::string_view kErrorsDone = "errors_done";
}  // namespace attr

inline constexpr std::string_view kHosts = "/hosts";
inline constexpr std::string_view kRuns = "/runs";

// Pair status codes stored in the pairs `status` matrix.
enum class PairStatus : std::int8_t { kNotRun = 0, kOk = 1, kFailed = 2, kTimeout = 3 };
inline constexpr std::string_view kStatusNamesValue = "not_run,ok,failed,timeout";

}  // namespace fabscope::io::schema
