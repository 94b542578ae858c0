// Where a Fabric comes from. Every function returns a built Fabric (model.hpp) or throws
// core::UsageError with one line that names the file, the line, the field and a fix.
//
//   load_topology_yaml       RoCE/Ethernet fabrics described by hand (configs/topologies/*.yaml);
//                            the format is documented in yaml_source.cpp and
//                            configs/topologies/README.md
//   fabric_from_hostnames    fallback: racks (and pods) read out of host names by a pattern
//   parse_ibnetdiscover      an `ibnetdiscover` text dump (ibsim net files use the same syntax)
//   parse_ibroute_dump       switch forwarding tables as `ibroute` / dump_lfts.sh print them
//   ibnd.hpp                 libibnetdisc: live discovery, cache files, forwarding tables
//   local.hpp                this host: sysfs, libibverbs, hwloc
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "topology/model.hpp"

namespace fabscope::topology {

[[nodiscard]] Fabric load_topology_yaml(const std::string& path);
// `name` is what error messages call the text (normally the file name).
[[nodiscard]] Fabric parse_topology_yaml(std::string_view text, const std::string& name);

// `pattern` is a NamedRegex (named_regex.hpp) that must match the whole host name, with groups
// `rack` (required), `node`, `pod`, `leaf` (optional). Each host becomes one NIC on its rack's leaf
// (leaf = the `leaf` group, else one leaf per rack, named after the rack); racks go to pods by the
// `pod` group (else one pod). Spines are unknown, so the model assumes a Clos: same rack 2 hops,
// same pod 4, different pods 6. Hosts are ordered by the numeric value of `node` within a rack when
// it is a number. Throws core::UsageError naming `what` (the flag that gave the pattern) and the
// first host the pattern does not match, or why the pattern is refused (named_regex.hpp).
[[nodiscard]] Fabric fabric_from_hostnames(std::span<const std::string> hostnames,
                                           std::string_view pattern,
                                           std::string_view what = "--hostname-pattern");

// Parses what `ibnetdiscover` prints (also accepts ibsim net files: `Hca` records, no GUIDs).
// Hosts are named by the first word of a CA's NodeDescription ("node01 mlx5_0"), devices by the
// second; several CAs with one host name are one host with several NICs (rails by device name).
[[nodiscard]] Fabric parse_ibnetdiscover(std::string_view text, const std::string& name);
[[nodiscard]] Fabric load_ibnetdiscover(const std::string& path);

// Parses `ibroute <switch>` output (one or more switches, e.g. dump_lfts.sh): the "Unicast lids
// [...] of switch Lid L guid 0x... (name):" header and the "0xLID PORT : ..." lines.
[[nodiscard]] std::vector<SwitchLft> parse_ibroute_dump(std::string_view text,
                                                        const std::string& name);

// Reads a whole text file; throws core::UsageError naming the file when it cannot be read.
[[nodiscard]] std::string read_text_file(const std::string& path, std::string_view what);

}  // namespace fabscope::topology
