// conv_bench: bitexact conv2d (forward, backward-data, backward-weight; fixed_order, and the
// exact tier of all three, its time printed as exact/fixed) against oneDNN (libdnnl, the library PyTorch's CPU convolution
// uses) in the same run, at 1 and 2 threads, on ResNet-50 shapes, MobileNet depthwise 3x3 and a
// 1-D audio shape. oneDNN runs its primitives on the layouts it prefers (memory format "any",
// the reorders to and from them not timed: its best case); bitexact runs on plain NCHW.
// PyTorch's CPU conv2d and its autograd backward (Debian's libtorch 1.13, when found) is the
// second peer, on NCHW tensors as a torch user calls it.
// The simplest deterministic peer, "serial": a plain serial direct loop (NCHW, multiply then add,
// one thread, a fixed loop order: forward per output element, backward-data and backward-weight
// scattering over dy in order; the compiler may vectorise what it can), full runs only (not under
// BITEXACT_BENCH_QUICK) and timed at t1 (its t2 row reuses the t1 time).
// The summary prints images/s and the speed ratio of bitexact to the fastest peer (above 1:
// bitexact faster), naming that peer.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <bitexact/conv.hpp>

#ifdef BITEXACT_HAVE_DNNL
#include <dnnl.hpp>
#include <omp.h>
#endif

#include "median_reporter.hpp"

#ifdef BITEXACT_HAVE_TORCH
#include "conv_torch_peer.hpp"
#endif

namespace {

struct bench_shape {
  const char* name;
  bitexact::conv2d_shape s;
  bool exact;  // also time the exact tier (forward, backward-data, backward-weight)
};

bitexact::conv2d_shape mk(std::size_t n, std::size_t c, std::size_t h, std::size_t w, std::size_t oc, std::size_t k,
                          std::size_t stride, std::size_t pad, std::size_t groups, std::size_t kh = 0) {
  bitexact::conv2d_shape s;
  s.batch = n;
  s.in_channels = c;
  s.in_h = h;
  s.in_w = w;
  s.out_channels = oc;
  s.kernel_h = kh ? kh : k;
  s.kernel_w = k;
  s.stride_h = kh == 1 ? 1 : stride;
  s.stride_w = stride;
  s.pad_h = kh == 1 ? 0 : pad;
  s.pad_w = pad;
  s.groups = groups;
  return s;
}

constexpr std::size_t kBatch = 2;

const std::vector<bench_shape>& shapes() {
  static const std::vector<bench_shape> v = {
      {"stem7x7s2_3-64_224", mk(kBatch, 3, 224, 224, 64, 7, 2, 3, 1), false},  // exact bwd-data: seconds
      {"3x3_64-64_56", mk(kBatch, 64, 56, 56, 64, 3, 1, 1, 1), true},
      {"1x1_256-64_56", mk(kBatch, 256, 56, 56, 64, 1, 1, 0, 1), true},
      {"1x1_64-256_56", mk(kBatch, 64, 56, 56, 256, 1, 1, 0, 1), true},
      {"3x3_256-256_14", mk(kBatch, 256, 14, 14, 256, 3, 1, 1, 1), true},
      {"dw3x3_32_112", mk(kBatch, 32, 112, 112, 32, 3, 1, 1, 32), true},
      {"dw3x3_512_14", mk(kBatch, 512, 14, 14, 512, 3, 1, 1, 512), true},
      {"conv1d_k3_64-64_L16000", mk(kBatch, 64, 1, 16000, 64, 3, 1, 1, 1, 1), true},
  };
  return v;
}

std::size_t xs(const bitexact::conv2d_shape& s) { return s.batch * s.in_channels * s.in_h * s.in_w; }
std::size_t ws(const bitexact::conv2d_shape& s) {
  return s.out_channels * (s.in_channels / s.groups) * s.kernel_h * s.kernel_w;
}
std::size_t ys(const bitexact::conv2d_shape& s) { return s.batch * s.out_channels * s.out_h() * s.out_w(); }

std::vector<float> rnd(std::size_t n, std::uint32_t seed) {
  std::vector<float> v(n);
  std::uint32_t z = seed * 2654435761u + 1;
  for (auto& x : v) {
    z = z * 1664525u + 1013904223u;
    x = static_cast<float>(static_cast<int>(z >> 9) - (1 << 22)) * 0x1p-22f;
  }
  return v;
}

enum op_kind { fwd = 0, bwd_data = 1, bwd_weight = 2, fwd_exact = 3, bwd_data_exact = 4, bwd_weight_exact = 5 };
const char* op_name(int op) {
  static const char* n[] = {"fwd", "bwd_data", "bwd_weight", "fwd_exact", "bwd_data_exact", "bwd_weight_exact"};
  return n[op];
}
bool is_exact(int op) { return op >= fwd_exact; }
int fixed_of(int op) { return is_exact(op) ? op - fwd_exact : op; }

/// conv2d_<op>/<shape>/t<threads>/<impl>; an exact op is its fixed_order op with impl "exact".
std::string bench_name(std::size_t shape_index, int op, int threads, const std::string& impl) {
  const bool ex = is_exact(op);
  return std::string("conv2d_") + op_name(fixed_of(op)) + "/" + shapes()[shape_index].name + "/t" +
         std::to_string(threads) + "/" + (ex && impl == "bitexact" ? std::string("exact") : impl);
}

void BM_bitexact(benchmark::State& st, std::size_t shape_index, int op, int threads) {
  const bitexact::conv2d_shape& s = shapes()[shape_index].s;
  auto x = rnd(xs(s), 1), w = rnd(ws(s), 2), b = rnd(s.out_channels, 3), dy = rnd(ys(s), 4);
  std::vector<float> y(ys(s)), dx(xs(s)), dw(ws(s)), db(s.out_channels);
  const bitexact::execution ex{threads, bitexact::isa::automatic};
  for (auto _ : st) {
    switch (op) {
      case fwd: bitexact::conv2d_forward(s, x.data(), w.data(), b.data(), y.data(), bitexact::tier::fixed_order, ex); break;
      case fwd_exact: bitexact::conv2d_forward(s, x.data(), w.data(), b.data(), y.data(), bitexact::tier::exact, ex); break;
      case bwd_data: bitexact::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), bitexact::tier::fixed_order, ex); break;
      case bwd_data_exact: bitexact::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), bitexact::tier::exact, ex); break;
      case bwd_weight_exact: bitexact::conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data(), bitexact::tier::exact, ex); break;
      default: bitexact::conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data(), bitexact::tier::fixed_order, ex);
    }
    benchmark::ClobberMemory();
  }
  st.counters["images/s"] = benchmark::Counter(static_cast<double>(s.batch), benchmark::Counter::kIsIterationInvariantRate);
}

/// The serial direct loop (NCHW): every output element a plain chain acc = acc + a * b.
void BM_serial(benchmark::State& st, std::size_t shape_index, int op, int) {
  const bitexact::conv2d_shape& s = shapes()[shape_index].s;
  auto x = rnd(xs(s), 1), w = rnd(ws(s), 2), b = rnd(s.out_channels, 3), dy = rnd(ys(s), 4);
  std::vector<float> y(ys(s)), dx(xs(s)), dw(ws(s)), db(s.out_channels);
  const std::size_t N = s.batch, C = s.in_channels, H = s.in_h, W = s.in_w, OC = s.out_channels, KH = s.kernel_h,
                    KW = s.kernel_w, OH = s.out_h(), OW = s.out_w(), G = s.groups, Cg = C / G, OCg = OC / G;
  auto tap = [](std::size_t o, std::size_t r, std::size_t st_, std::size_t p, std::size_t d, std::size_t in, std::size_t& i) {
    const std::size_t t = o * st_ + r * d;
    if (t < p || t - p >= in) return false;
    i = t - p;
    return true;
  };
  for (auto _ : st) {
    if (op == fwd) {
      for (std::size_t n = 0; n < N; ++n)
        for (std::size_t oc = 0; oc < OC; ++oc)
          for (std::size_t oh = 0; oh < OH; ++oh)
            for (std::size_t ow = 0; ow < OW; ++ow) {
              float acc = b[oc];
              const std::size_t g = oc / OCg;
              for (std::size_t icg = 0; icg < Cg; ++icg)
                for (std::size_t kr = 0; kr < KH; ++kr)
                  for (std::size_t kc = 0; kc < KW; ++kc) {
                    std::size_t ih, iw;
                    if (!tap(oh, kr, s.stride_h, s.pad_h, s.dilation_h, H, ih) ||
                        !tap(ow, kc, s.stride_w, s.pad_w, s.dilation_w, W, iw))
                      continue;
                    const float prod = x[((n * C + g * Cg + icg) * H + ih) * W + iw] * w[((oc * Cg + icg) * KH + kr) * KW + kc];
                    acc = acc + prod;
                  }
              y[((n * OC + oc) * OH + oh) * OW + ow] = acc;
            }
    } else if (op == bwd_data) {
      std::fill(dx.begin(), dx.end(), 0.0f);
      for (std::size_t n = 0; n < N; ++n)  // scatter form, serial: each dx element in a fixed order
        for (std::size_t oc = 0; oc < OC; ++oc)
          for (std::size_t oh = 0; oh < OH; ++oh)
            for (std::size_t ow = 0; ow < OW; ++ow) {
              const float d = dy[((n * OC + oc) * OH + oh) * OW + ow];
              const std::size_t g = oc / OCg;
              for (std::size_t icg = 0; icg < Cg; ++icg)
                for (std::size_t kr = 0; kr < KH; ++kr)
                  for (std::size_t kc = 0; kc < KW; ++kc) {
                    std::size_t ih, iw;
                    if (!tap(oh, kr, s.stride_h, s.pad_h, s.dilation_h, H, ih) ||
                        !tap(ow, kc, s.stride_w, s.pad_w, s.dilation_w, W, iw))
                      continue;
                    float& t = dx[((n * C + g * Cg + icg) * H + ih) * W + iw];
                    const float prod = d * w[((oc * Cg + icg) * KH + kr) * KW + kc];
                    t = t + prod;
                  }
            }
    } else {
      std::fill(dw.begin(), dw.end(), 0.0f);
      std::fill(db.begin(), db.end(), 0.0f);
      for (std::size_t n = 0; n < N; ++n)
        for (std::size_t oc = 0; oc < OC; ++oc)
          for (std::size_t oh = 0; oh < OH; ++oh)
            for (std::size_t ow = 0; ow < OW; ++ow) {
              const float d = dy[((n * OC + oc) * OH + oh) * OW + ow];
              db[oc] = db[oc] + d;
              const std::size_t g = oc / OCg;
              for (std::size_t icg = 0; icg < Cg; ++icg)
                for (std::size_t kr = 0; kr < KH; ++kr)
                  for (std::size_t kc = 0; kc < KW; ++kc) {
                    std::size_t ih, iw;
                    if (!tap(oh, kr, s.stride_h, s.pad_h, s.dilation_h, H, ih) ||
                        !tap(ow, kc, s.stride_w, s.pad_w, s.dilation_w, W, iw))
                      continue;
                    float& t = dw[((oc * Cg + icg) * KH + kr) * KW + kc];
                    const float prod = d * x[((n * C + g * Cg + icg) * H + ih) * W + iw];
                    t = t + prod;
                  }
            }
    }
    benchmark::ClobberMemory();
  }
  st.counters["images/s"] = benchmark::Counter(static_cast<double>(s.batch), benchmark::Counter::kIsIterationInvariantRate);
}

#ifdef BITEXACT_HAVE_DNNL
void BM_onednn(benchmark::State& st, std::size_t shape_index, int op, int threads) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const bitexact::conv2d_shape& s = shapes()[shape_index].s;
  omp_set_num_threads(threads);
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const auto N = static_cast<memory::dim>(s.batch), C = static_cast<memory::dim>(s.in_channels),
             H = static_cast<memory::dim>(s.in_h), W = static_cast<memory::dim>(s.in_w),
             OC = static_cast<memory::dim>(s.out_channels), KH = static_cast<memory::dim>(s.kernel_h),
             KW = static_cast<memory::dim>(s.kernel_w), OH = static_cast<memory::dim>(s.out_h()),
             OW = static_cast<memory::dim>(s.out_w()), G = static_cast<memory::dim>(s.groups);
  const memory::dims strides = {static_cast<memory::dim>(s.stride_h), static_cast<memory::dim>(s.stride_w)};
  const memory::dims dil = {static_cast<memory::dim>(s.dilation_h) - 1, static_cast<memory::dim>(s.dilation_w) - 1};
  const memory::dims pl = {static_cast<memory::dim>(s.pad_h), static_cast<memory::dim>(s.pad_w)};
  const memory::dims pr = {(OH - 1) * strides[0] + (KH - 1) * (dil[0] + 1) + 1 - H - pl[0],
                           (OW - 1) * strides[1] + (KW - 1) * (dil[1] + 1) + 1 - W - pl[1]};
  const memory::dims wdims = G > 1 ? memory::dims{G, OC / G, C / G, KH, KW} : memory::dims{OC, C, KH, KW};
  memory::desc src_md({N, C, H, W}, dt::f32, tag::any), dst_md({N, OC, OH, OW}, dt::f32, tag::any),
      wei_md(wdims, dt::f32, tag::any), bias_md({OC}, dt::f32, tag::x);
  convolution_forward::primitive_desc fpd(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src_md, wei_md, bias_md,
                                dst_md, strides, dil, pl, pr),
      eng);
  auto fill = [&](const memory::desc& md, std::uint32_t seed) {
    memory m(md, eng);
    auto v = rnd(md.get_size() / sizeof(float), seed);
    std::memcpy(m.get_data_handle(), v.data(), v.size() * sizeof(float));
    return m;
  };
  memory src = fill(fpd.src_desc(), 1), wei = fill(fpd.weights_desc(), 2), bias = fill(fpd.bias_desc(), 3),
         dst = fill(fpd.dst_desc(), 4);
  std::unique_ptr<primitive> prim;
  std::unordered_map<int, memory> args;
  if (op == fwd) {
    prim.reset(new convolution_forward(fpd));
    args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}};
  } else if (op == bwd_data) {
    convolution_backward_data::primitive_desc bpd(
        convolution_backward_data::desc(algorithm::convolution_direct, src_md, wei_md, dst_md, strides, dil, pl, pr),
        eng, fpd);
    memory dsrc = fill(bpd.diff_src_desc(), 5), w2 = fill(bpd.weights_desc(), 2), ddst = fill(bpd.diff_dst_desc(), 4);
    prim.reset(new convolution_backward_data(bpd));
    args = {{DNNL_ARG_DIFF_SRC, dsrc}, {DNNL_ARG_WEIGHTS, w2}, {DNNL_ARG_DIFF_DST, ddst}};
  } else {
    convolution_backward_weights::primitive_desc bpd(
        convolution_backward_weights::desc(algorithm::convolution_direct, src_md, wei_md, bias_md, dst_md, strides,
                                           dil, pl, pr),
        eng, fpd);
    memory s2 = fill(bpd.src_desc(), 1), dwei = fill(bpd.diff_weights_desc(), 6), dbias = fill(bpd.diff_bias_desc(), 7),
           ddst = fill(bpd.diff_dst_desc(), 4);
    prim.reset(new convolution_backward_weights(bpd));
    args = {{DNNL_ARG_SRC, s2}, {DNNL_ARG_DIFF_WEIGHTS, dwei}, {DNNL_ARG_DIFF_BIAS, dbias}, {DNNL_ARG_DIFF_DST, ddst}};
  }
  for (auto _ : st) {
    prim->execute(strm, args);
    strm.wait();
  }
  st.counters["images/s"] = benchmark::Counter(static_cast<double>(s.batch), benchmark::Counter::kIsIterationInvariantRate);
}
#endif

#ifdef BITEXACT_HAVE_TORCH
void BM_torch(benchmark::State& st, std::size_t shape_index, int op, int threads) {
  const auto run = conv_peers::torch_conv2d(shapes()[shape_index].s, op, threads);
  for (auto _ : st) run();
  st.counters["images/s"] =
      benchmark::Counter(static_cast<double>(shapes()[shape_index].s.batch), benchmark::Counter::kIsIterationInvariantRate);
}
#endif

std::map<std::string, double> g_seconds;

void print_summary() {
  std::printf("\nSummary: batch %zu, fp32, wall clock, median of 3; bitexact ISA %s, NCHW; ratio = bitexact speed / "
              "the fastest peer's (oneDNN, torch, serial: full runs, t1 time)\n",
              kBatch, bitexact::isa_name(bitexact::resolved_isa()));
  std::printf("%-24s %-10s %3s %12s %12s %12s %12s %8s %-7s %12s\n", "shape", "op", "thr", "bitexact i/s", "oneDNN i/s",
              "torch i/s", "serial i/s", "ratio", "fastest", "exact/fixed");
  for (std::size_t i = 0; i < shapes().size(); ++i)
    for (int op : {fwd, bwd_data, bwd_weight})
      for (int t : {1, 2}) {
        auto get = [&](const std::string& who, int o) {
          const std::string key = bench_name(i, o, t, who);
          for (const auto& kv : g_seconds)
            if (kv.first.compare(0, key.size(), key) == 0) return kv.second;
          return 0.0;
        };
        const double bx = get("bitexact", op), dn = get("onednn", op), th = get("torch", op);
        double se = 0.0;  // the serial loop runs at t1 only
        {
          const std::string key = bench_name(i, op, 1, "serial");
          for (const auto& kv : g_seconds)
            if (kv.first.compare(0, key.size(), key) == 0) se = kv.second;
        }
        if (bx == 0.0 && dn == 0.0 && th == 0.0) continue;  // filtered out
        const double ex = get("bitexact", op + fwd_exact);
        double best = 0.0;
        const char* who = "-";
        if (dn > 0) best = dn, who = "onednn";
        if (th > 0 && (best == 0.0 || th < best)) best = th, who = "torch";
        if (se > 0 && (best == 0.0 || se < best)) best = se, who = "serial";
        char exs[32] = "-";
        if (ex > 0 && bx > 0) std::snprintf(exs, sizeof exs, "%.2f", ex / bx);
        auto ips = [](double sec) { return sec > 0 ? kBatch / sec : 0.0; };
        std::printf("%-24s %-10s %3d %12.1f %12.1f %12.1f %12.1f %8.2f %-7s %12s\n", shapes()[i].name, op_name(op), t,
                    ips(bx), ips(dn), ips(th), ips(se), (bx > 0 && best > 0) ? best / bx : 0.0, who, exs);
      }
}

}  // namespace

int main(int argc, char** argv) {
  // <op>/<case>/t<threads>/<impl>: the report's naming (benchmarks/median_reporter.hpp).
  using bench_fn = void (*)(benchmark::State&, std::size_t, int, int);
  auto reg = [](std::size_t i, int op, int t, const char* impl, bench_fn fn) {
    auto* b = benchmark::RegisterBenchmark(bench_name(i, op, t, impl).c_str(),
                                           [i, op, t, fn](benchmark::State& st) { fn(st, i, op, t); });
    b->UseRealTime()->Unit(benchmark::kMillisecond)->Repetitions(bitexact_bench::repetitions(3))->ReportAggregatesOnly(true);
    // The exact tier runs once per repetition; the main job's quick mode runs the rest for
    // 20 ms per repetition (single iterations of 50-us ops measured cold caches and noise).
    if (is_exact(op))
      b->Iterations(1);
    else if (bitexact_bench::quick())
      b->MinTime(0.02);
  };
  for (std::size_t i = 0; i < shapes().size(); ++i) {
    for (int op : {fwd, bwd_data, bwd_weight, fwd_exact, bwd_data_exact, bwd_weight_exact}) {
      if (is_exact(op) && !shapes()[i].exact) continue;
      for (int t : {1, 2}) {
        reg(i, op, t, "bitexact", BM_bitexact);
        if (is_exact(op)) continue;  // the peers have no exact tier
        if (t == 1 && !bitexact_bench::quick()) reg(i, op, t, "serial", BM_serial);
#ifdef BITEXACT_HAVE_DNNL
        reg(i, op, t, "onednn", BM_onednn);
#endif
#ifdef BITEXACT_HAVE_TORCH
        reg(i, op, t, "torch", BM_torch);
#endif
      }
    }
  }
#ifndef BITEXACT_HAVE_TORCH
  std::printf("conv_bench: built without libtorch (apt-get install libtorch-dev): the PyTorch peer is skipped\n");
#endif
  benchmark::Initialize(&argc, argv);
  bitexact_bench::declare_family("conv", {{"bitexact", "bitexact"}, {"onednn", "nondeterministic"}, {"torch", "nondeterministic"},
                                          {"serial", "deterministic"}});
  bitexact_bench::median_reporter reporter([](const bitexact_bench::median_reporter::Run& r) {
    if (r.iterations > 0) g_seconds[r.run_name.str()] = r.real_accumulated_time / static_cast<double>(r.iterations);
  });
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_summary();
  benchmark::Shutdown();
  return 0;
}
