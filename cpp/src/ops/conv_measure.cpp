#include "ops/conv_measure.hpp"

#include <limits>
#include <list>
#include <mutex>

namespace cnncore::detail {

namespace {

struct Measured {
  std::vector<int64_t> key;
  double best[kMeasureCandidates], aside[kMeasureCandidates];  // typical trials' fastest; the others'
  int tries[kMeasureCandidates] = {}, retries[kMeasureCandidates] = {};
  // whether candidate c owes no more trials: kMeasureTrials, one typical
  // at least (or kMeasureRetries more, none typical)
  bool done(int c) const {
    const int all = tries[c] + retries[c];
    return (all >= kMeasureTrials && tries[c] > 0) || all >= kMeasureTrials + kMeasureRetries;
  }
  // candidate c's time: its typical trials', else (none) the others'
  double time(int c) const { return tries[c] > 0 ? best[c] : aside[c]; }
  int next = 0;  // the candidate whose turn it is
};

struct Measurements {
  std::mutex mu;
  std::list<Measured> entries;  // most recently used first
};

Measurements& measurements() {
  static auto* m = new Measurements();  // never destroyed (calls may run during static destruction)
  return *m;
}

// The entry of `key`, moved to the front; made when absent. Caller holds the lock.
Measured& entry(Measurements& m, const std::vector<int64_t>& key) {
  for (auto it = m.entries.begin(); it != m.entries.end(); ++it)
    if (it->key == key) {
      m.entries.splice(m.entries.begin(), m.entries, it);
      return m.entries.front();
    }
  Measured e;
  e.key = key;
  for (int c = 0; c < kMeasureCandidates; ++c) e.best[c] = e.aside[c] = std::numeric_limits<double>::infinity();
  m.entries.push_front(std::move(e));
  while (m.entries.size() > kMaxMeasured) m.entries.pop_back();
  return m.entries.front();
}

}  // namespace

int measured_candidate(const std::vector<int64_t>& key, const bool fits[kMeasureCandidates], bool* trial) {
  Measurements& m = measurements();
  std::lock_guard<std::mutex> lock(m.mu);
  Measured& e = entry(m, key);
  *trial = false;
  // the next candidate in turn that fits and still owes trials
  for (int step = 0; step < kMeasureCandidates; ++step) {
    const int c = (e.next + step) % kMeasureCandidates;
    if (fits[c] && !e.done(c)) {
      e.next = (c + 1) % kMeasureCandidates;
      *trial = true;
      return c;
    }
  }
  // trials done (for those that fit): the fastest that fits
  int pick = -1;
  for (int c = 0; c < kMeasureCandidates; ++c)
    if (fits[c] && (pick < 0 || e.time(c) < e.time(pick))) pick = c;
  return pick < 0 ? 0 : pick;
}

void record_measurement(const std::vector<int64_t>& key, int candidate, double seconds, bool typical) {
  if (candidate < 0 || candidate >= kMeasureCandidates) return;
  Measurements& m = measurements();
  std::lock_guard<std::mutex> lock(m.mu);
  Measured& e = entry(m, key);
  ++(typical ? e.tries : e.retries)[candidate];
  double& t = (typical ? e.best : e.aside)[candidate];
  if (seconds < t) t = seconds;
}

bool measured_exact(const std::vector<int64_t>& key) {
  Measurements& m = measurements();
  std::lock_guard<std::mutex> lock(m.mu);
  for (const Measured& e : m.entries)
    if (e.key == key) {
      // the exact engine and the model's tile timed (the other tile, where
      // it took part), and the exact engine the fastest
      if (!e.done(0) || !e.done(1)) return false;
      for (int c = 1; c < kMeasureCandidates; ++c)
        if ((e.tries[c] + e.retries[c] > 0 && !e.done(c)) || e.time(c) < e.time(0)) return false;
      return true;
    }
  return false;
}

void clear_measurements() {
  Measurements& m = measurements();
  std::lock_guard<std::mutex> lock(m.mu);
  m.entries.clear();
}

std::size_t measured_problems() {
  Measurements& m = measurements();
  std::lock_guard<std::mutex> lock(m.mu);
  return m.entries.size();
}

}  // namespace cnncore::detail
