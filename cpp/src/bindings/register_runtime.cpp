#include "bindings/common.hpp"
#include "cpu/kernels/fma-peak.hpp"

namespace cnncore::bindings {

void register_runtime(py::module_& m) {
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("set_deterministic", &set_deterministic, py::arg("on"));
  m.def("get_deterministic", &get_deterministic);
  m.def("set_exact_algorithms", &set_exact_algorithms, py::arg("on"));
  m.def("get_exact_algorithms", &get_exact_algorithms);
  m.def("set_winograd_cache_limit", &set_winograd_cache_limit, py::arg("nbytes"));
  m.def("get_winograd_cache_limit", &get_winograd_cache_limit);
  m.def("winograd_cache_bytes", &winograd_cache_bytes);
  m.def("get_num_threads", &get_num_threads);
  m.def("set_memory_limit", &set_memory_limit, py::arg("nbytes"));
  m.def("get_memory_limit", &get_memory_limit);
  m.def("set_host_cache_limit", &set_host_cache_limit, py::arg("nbytes"));
  m.def("get_host_cache_limit", &get_host_cache_limit);
  m.def("host_cache_bytes", &host_cache_bytes);
  m.def("empty_host_cache", &empty_host_cache);
  m.def("get_isa", [] { return std::string(isa_name(get_isa())); });
  m.def("set_isa", [](const std::string& name) { set_isa(parse_isa(name)); }, py::arg("name"));
  m.def("best_isa", [] { return std::string(isa_name(best_supported_isa())); });
  // benchmarks/fma_peak.py: the measured fp32 FMA peak (GFLOP/s, all threads).
  m.def(
      "_fma_peak",
      [](int threads, const std::string& isa, double seconds) {
        if (threads < 1 || threads > 1024)
          throw value_error(detail::str("_fma_peak: threads must be in [1, 1024], got ", threads));
        if (!(seconds > 0 && seconds <= 60))
          throw value_error(detail::str("_fma_peak: seconds must be in (0, 60], got ", seconds));
        const cpu::FmaPeak r = [&] {
          py::gil_scoped_release release;
          return cpu::measure_fma_peak(threads, parse_isa(isa), seconds);
        }();
        py::dict d;
        d["gflops"] = r.gflops;
        d["seconds"] = r.seconds;
        d["threads"] = r.threads;
        d["isa"] = std::string(isa_name(r.isa));
        return d;
      },
      py::arg("threads"), py::arg("isa"), py::arg("seconds") = 0.5);
}

}  // namespace cnncore::bindings
