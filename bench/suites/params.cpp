#include "suites/params.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/units.hpp"

namespace fabscope::suites {
namespace {

// "a, b or c"
std::string or_list(const std::vector<std::string>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i)
    out += (i == 0 ? "" : i + 1 == v.size() ? " or " : ", ") + v[i];
  return out;
}

template <class T>
T parse_integer(const std::string& text, const std::string& where, const char* what) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() ||
      v < static_cast<long long>(std::numeric_limits<T>::min()) ||
      static_cast<unsigned long long>(std::max(v, 0LL)) >
          static_cast<unsigned long long>(std::numeric_limits<T>::max())) {
    throw core::UsageError(fmt::format("{}: expected {}, got '{}'", where, what, text));
  }
  return static_cast<T>(v);
}

std::string format_number(double v) { return fmt::format("{:g}", v); }

}  // namespace

std::string flag_of(std::string_view field) {
  std::string flag = "--";
  for (const char c : field) flag += c == '_' ? '-' : c;
  return flag;
}

std::string Where::name(std::string_view field) const {
  return cli ? flag_of(field) : std::string(field);
}

void Where::fail(const std::string& message) const {
  throw core::UsageError(fmt::format("{}: {}", prefix, message));
}

ParamSet::Param& ParamSet::Param::at_least(long long lo) {
  auto value = int_value;
  check = [value, lo, bytes = bytes, n = name](const Where& w) {
    const long long v = value();
    if (v >= lo) return;
    if (bytes)
      w.fail(fmt::format("{} must be at least {} byte{}", w.name(n), lo, lo == 1 ? "" : "s"));
    w.fail(fmt::format("{} must be at least {} (got {})", w.name(n), lo, v));
  };
  return *this;
}

ParamSet::Param& ParamSet::Param::choices(std::vector<std::string> allowed, std::string noun) {
  auto values = text_values;
  auto previous = check;
  check = [values, allowed = std::move(allowed), noun = std::move(noun), previous,
           n = name](const Where& w) {
    for (const auto& v : values()) {
      if (v.empty()) continue;  // not set
      if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
        w.fail(fmt::format("{}: unknown {} '{}'; use {}", w.name(n), noun, v, or_list(allowed)));
      }
    }
    if (previous) previous(w);
  };
  return *this;
}

ParamSet::Param& ParamSet::Param::unique() {
  auto values = text_values;
  auto previous = check;
  check = [values, previous, n = name](const Where& w) {
    if (previous) previous(w);
    const auto v = values();
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (std::find(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v[i]) !=
          v.begin() + static_cast<std::ptrdiff_t>(i)) {
        w.fail(fmt::format("{}: '{}' is listed twice", w.name(n), v[i]));
      }
    }
  };
  return *this;
}

ParamSet::Param& ParamSet::add(Param p) {
  if (find(p.name) != nullptr)
    throw core::Error(core::ExitCode::kFailure, "parameter declared twice: " + p.name);
  params_.push_back(std::move(p));
  return params_.back();
}

ParamSet::Param& ParamSet::integer(std::string name, int& field, int def, std::string help) {
  field = def;
  Param p{std::move(name), std::move(help), std::to_string(def)};
  p.set = [&field](const std::string& text, const std::string& where) {
    field = parse_integer<int>(text, where, "an integer");
  };
  p.get = [&field] { return std::to_string(field); };
  p.int_value = [&field] { return static_cast<long long>(field); };
  p.type = "INT";
  return add(std::move(p));
}

ParamSet::Param& ParamSet::seed(std::string name, std::uint64_t& field, std::uint64_t def,
                                std::string help) {
  field = def;
  Param p{std::move(name), std::move(help), std::to_string(def)};
  p.set = [&field](const std::string& text, const std::string& where) {
    if (text.starts_with('-'))
      throw core::UsageError(
          fmt::format("{}: expected a non-negative integer, got '{}'", where, text));
    std::size_t used = 0;
    try {
      field = std::stoull(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (text.empty() || used != text.size()) {
      throw core::UsageError(
          fmt::format("{}: expected a non-negative integer, got '{}'", where, text));
    }
  };
  p.get = [&field] { return std::to_string(field); };
  p.type = "INT";
  return add(std::move(p));
}

ParamSet::Param& ParamSet::number(std::string name, double& field, double def, std::string help) {
  field = def;
  Param p{std::move(name), std::move(help), format_number(def)};
  p.set = [&field](const std::string& text, const std::string& where) {
    std::size_t used = 0;
    try {
      field = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (text.empty() || used != text.size() || !std::isfinite(field)) {
      throw core::UsageError(fmt::format("{}: expected a number, got '{}'", where, text));
    }
  };
  p.get = [&field] { return format_number(field); };
  p.type = "NUM";
  return add(std::move(p));
}

ParamSet::Param& ParamSet::size(std::string name, std::size_t& field, std::string def,
                                std::string help) {
  field = core::parse_size(def, name);
  Param p{std::move(name), std::move(help), std::move(def)};
  p.set = [&field](const std::string& text, const std::string& where) {
    field = core::parse_size(text, where);
  };
  p.get = [&field] { return std::to_string(field); };
  p.int_value = [&field] { return static_cast<long long>(field); };
  p.bytes = true;
  p.type = "SIZE";
  return add(std::move(p));
}

ParamSet::Param& ParamSet::sizes(std::string name, std::vector<std::size_t>& field, std::string def,
                                 std::string help) {
  field = core::parse_sizes(def, name);
  Param p{std::move(name), std::move(help), std::move(def)};
  p.set = [&field](const std::string& text, const std::string& where) {
    field = core::parse_sizes(text, where);
  };
  p.get = [&field] { return fmt::format("{}", fmt::join(field, ",")); };
  p.type = "SIZES";
  return add(std::move(p));
}

ParamSet::Param& ParamSet::duration(std::string name, double& field_s, std::string def,
                                    std::string help) {
  if (!def.empty()) field_s = core::parse_duration_s(def, name);
  Param p{std::move(name), std::move(help), std::move(def)};
  p.set = [&field_s](const std::string& text, const std::string& where) {
    field_s = core::parse_duration_s(text, where);
  };
  p.get = [&field_s] { return format_number(field_s); };
  p.type = "DURATION";
  return add(std::move(p));
}

ParamSet::Param& ParamSet::text(std::string name, std::string& field, std::string def,
                                std::string help) {
  field = def;
  Param p{std::move(name), std::move(help), std::move(def)};
  p.set = [&field](const std::string& text, const std::string&) { field = text; };
  p.get = [&field] { return field; };
  p.text_values = [&field] { return std::vector<std::string>{field}; };
  return add(std::move(p));
}

ParamSet::Param& ParamSet::list(std::string name, std::vector<std::string>& field, std::string def,
                                std::string help) {
  field = split_list(def);
  Param p{std::move(name), std::move(help), std::move(def)};
  p.set = [&field](const std::string& text, const std::string&) { field = split_list(text); };
  p.get = [&field] { return fmt::format("{}", fmt::join(field, ",")); };
  p.text_values = [&field] { return field; };
  p.type = "LIST";
  return add(std::move(p));
}

ParamSet::Param& ParamSet::flag(std::string name, bool& field, std::string help) {
  field = false;
  Param p{std::move(name), std::move(help), ""};
  p.is_flag = true;
  p.set = [&field](const std::string& text, const std::string& where) {
    if (text == "true" || text == "1" || text == "yes" || text == "on")
      field = true;
    else if (text == "false" || text == "0" || text == "no" || text == "off")
      field = false;
    else
      throw core::UsageError(fmt::format("{}: expected true or false, got '{}'", where, text));
  };
  p.get = [&field] { return field ? std::string("true") : std::string("false"); };
  return add(std::move(p));
}

ParamSet::Param& ParamSet::rate(std::string name, double& gbps, std::string help) {
  gbps = 0;
  Param p{std::move(name), std::move(help), ""};
  p.set = [&gbps](const std::string& text, const std::string& where) {
    gbps = parse_rate_gbps(text, where);
  };
  p.get = [&gbps] { return format_number(gbps); };
  p.type = "RATE";
  return add(std::move(p));
}

ParamSet::Param& ParamSet::custom(std::string name, std::string def, std::string help,
                                  std::function<void(const std::string&, const std::string&)> set,
                                  std::function<std::string()> get) {
  if (!def.empty()) set(def, name);
  Param p{std::move(name), std::move(help), std::move(def)};
  p.set = std::move(set);
  p.get = std::move(get);
  return add(std::move(p));
}

void ParamSet::set(std::string_view name, const std::string& text, const std::string& where) {
  Param* p = find(name);
  if (p == nullptr) throw core::UsageError(fmt::format("{}: unknown setting", where));
  p->set(text, where.empty() ? flag_of(name) : where);
  ++p->given;
}

ParamSet::Param* ParamSet::find(std::string_view name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

const ParamSet::Param* ParamSet::find(std::string_view name) const {
  return const_cast<ParamSet*>(this)->find(name);
}

bool ParamSet::given(std::string_view name) const {
  const Param* p = find(name);
  return p != nullptr && p->given > 0;
}

void ParamSet::check(const Where& where) const {
  for (const auto& p : params_)
    if (p.check) p.check(where);
}

std::vector<std::string> ParamSet::values() const {
  std::vector<std::string> out;
  for (const auto& p : params_)
    if (!p.hidden) out.push_back(p.name + "=" + p.get());
  return out;
}

int parse_int(const std::string& text, const std::string& where) {
  return parse_integer<int>(text, where, "an integer");
}

double parse_rate_gbps(const std::string& text, const std::string& what) {
  // "400G", "25Gb/s", "100 Gbps", "800M", "1.6T", "10" (Gb/s): decimal units of bits per second.
  std::string t;
  for (const char c : text)
    if (c != ' ') t += c;
  for (const char* suffix : {"b/s", "bps", "bit/s"}) {
    const std::string sfx(suffix);
    if (t.size() > sfx.size() && t.compare(t.size() - sfx.size(), sfx.size(), sfx) == 0)
      t.resize(t.size() - sfx.size());
  }
  double scale = 1.0;  // Gb/s
  if (!t.empty() && std::string("MGT").find(static_cast<char>(
                        std::toupper(static_cast<unsigned char>(t.back())))) != std::string::npos) {
    const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
    scale = u == 'M' ? 1e-3 : u == 'G' ? 1.0 : 1e3;
    t.pop_back();
  }
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size() || !(v > 0) || !std::isfinite(v)) {
    throw core::UsageError(
        fmt::format("{} '{}': give a positive link rate in bits per second, e.g. 100G, 400Gb/s, "
                    "800M or 1.6T (a bare number is Gb/s)",
                    what, text));
  }
  return v * scale;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  for (auto piece : core::split(text, ',')) {
    while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    while (!piece.empty() && piece.back() == ' ') piece.remove_suffix(1);
    if (!piece.empty()) out.emplace_back(piece);
  }
  return out;
}

}  // namespace fabscope::suites
