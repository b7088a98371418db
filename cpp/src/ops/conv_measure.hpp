// auto's measured choice: where the cost model cannot order the exact
// engine and Winograd for a problem (conv_winograd_verdict says measure or
// measure_transforming: the estimates lie close, with the weights cached
// or transformed every call), auto times each candidate on the calls
// themselves and keeps the fastest. Every trial call computes
// the real result; the candidates differ only in rounding, and once the
// trials are done the choice stays fixed for the problem.
//
// The candidates are numbered 0 (the exact engine), 1 (Winograd with the
// tile the model finds fastest) and 2 (Winograd with the other tile, where
// the model's estimates of the two lie close: its memory bandwidths are
// one machine's); each one taking part runs kMeasureTrials calls, in turns,
// and its fastest is its time (the minimum, not the median: a shared
// machine only adds time). Three, not two: on a shared Zen 3 whose calls
// ran at twice their time for seconds at a stretch, two trials each let
// the slower engine win now and then (256 -> 256 @14's backward kept the
// exact engine at 6.8 ms where F(2,3) takes 4.9), and the choice stays. Where the model finds Winograd clearly faster
// but cannot order its tiles, only 1 and 2 take part.
// A cached-weights trial of Winograd that found its weights' transform not
// cached yet (the first Winograd call of a layer: ResNet's three
// 512 -> 512 @7 layers are one problem, so their first turns all pack) is
// not that candidate's time: it is kept aside, and a candidate whose trials
// were all such runs again, up to kMeasureRetries extra calls, until one is
// typical; one with no typical trial is timed by the others (its weights
// are then never kept: the cache is full or off).
// Problems are keyed by everything that decides the time (geometry, pass,
// element size, threads, kernel level, cached or transformed weights); at most kMaxMeasured are kept, the
// least recently used dropped first.
#pragma once

#include <cstdint>
#include <vector>

namespace cnncore::detail {

constexpr int kMeasureCandidates = 3, kMeasureTrials = 3, kMeasureRetries = 8;
constexpr std::size_t kMaxMeasured = 512;

// The candidate the next call of problem `key` runs. `fits[i]`: whether
// candidate i takes part and fits the memory limit now (one that does not
// is skipped, and candidate 0 runs when none fits). `*trial` is set when the call is a
// trial, whose seconds record_measurement then takes.
int measured_candidate(const std::vector<int64_t>& key, const bool fits[kMeasureCandidates], bool* trial);
// `typical`: false for a trial that did work later calls will not (above).
void record_measurement(const std::vector<int64_t>& key, int candidate, double seconds, bool typical = true);
// Whether the trials of `key` are done and candidate 0 won against those
// that took part (false for a problem never measured).
bool measured_exact(const std::vector<int64_t>& key);
// Forgets every measurement (tests); the number of problems kept.
void clear_measurements();
std::size_t measured_problems();

}  // namespace cnncore::detail
