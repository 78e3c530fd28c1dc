#include <rackterm/config/Manifest.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>

#include "Format.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>

namespace rackterm::config {

namespace {

using Reader = detail::TomlReader;
using detail::unknownKey;

/// The string at `key` (required when `example` names one), or an error.
std::optional<Error> readString(const Reader& rd, const toml::table& t, const char* key, std::string& out,
                                SourceLocation* where, const char* example, const char* table) {
    const toml::node* n = t.get(key);
    if (!n) {
        if (!example) return std::nullopt;
        return rd.error(t.source(), std::string(table) + " needs " + key + " = " + example);
    }
    if (!n->is_string()) return rd.error(n->source(), std::string(key) + " must be a string in quotes, e.g. " + key + " = " + (example ? example : "\"...\""));
    out = n->as_string()->get();
    if (where) *where = rd.at(n->source());
    return std::nullopt;
}

std::optional<Error> readInteger(const Reader& rd, const toml::table& t, const char* key, int64_t& out,
                                 SourceLocation* where, const char* example) {
    const toml::node* n = t.get(key);
    if (!n) return rd.error(t.source(), std::string("the manifest needs ") + key + " = " + example);
    if (!n->is_integer()) return rd.error(n->source(), std::string(key) + " must be a whole number, e.g. " + key + " = " + example);
    out = n->as_integer()->get();
    if (where) *where = rd.at(n->source());
    return std::nullopt;
}

bool validComponentId(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    return std::all_of(id.begin(), id.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

bool isNumeric(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

bool validPackageId(std::string_view id) {
    if (id.empty() || id.size() > 64 || id[0] == '-' || id[0] == '_') return false;
    return std::all_of(id.begin(), id.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

Result<Version> parseVersion(std::string_view text) {
    Version v;
    v.text = std::string(text);
    std::string_view core = text;
    if (const size_t plus = core.find('+'); plus != std::string_view::npos) {
        v.build = std::string(core.substr(plus + 1));
        core = core.substr(0, plus);
        if (v.build.empty()) return Error{"has an empty +BUILD part; drop the '+' or add build metadata, e.g. 1.2.0+git5"};
        size_t from = 0;
        while (from <= v.build.size()) {  // dot-separated [0-9A-Za-z-] identifiers (semver 10)
            size_t dot = v.build.find('.', from);
            if (dot == std::string::npos) dot = v.build.size();
            const std::string_view id = std::string_view(v.build).substr(from, dot - from);
            const bool ok = !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
                return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
            });
            if (!ok) return Error{"has a bad +BUILD part; use dot-separated [0-9A-Za-z-] identifiers, e.g. 1.2.0+git.5"};
            from = dot + 1;
        }
    }
    std::string_view pre;
    if (const size_t dash = core.find('-'); dash != std::string_view::npos) {
        pre = core.substr(dash + 1);
        core = core.substr(0, dash);
        if (pre.empty()) return Error{"has an empty -PRERELEASE part; drop the '-' or name it, e.g. 1.2.0-beta.1"};
    }
    uint64_t* parts[3] = {&v.major, &v.minor, &v.patch};
    size_t start = 0;
    for (int i = 0; i < 3; ++i) {
        const size_t dot = i < 2 ? core.find('.', start) : core.size();
        if (dot == std::string_view::npos) return Error{"needs MAJOR.MINOR.PATCH, e.g. 1.2.0"};
        const std::string_view part = core.substr(start, dot - start);
        if (!isNumeric(part) || (part.size() > 1 && part[0] == '0'))
            return Error{"needs MAJOR.MINOR.PATCH of whole numbers without leading zeros, e.g. 1.2.0"};
        const auto r = std::from_chars(part.data(), part.data() + part.size(), *parts[i]);
        if (r.ec != std::errc()) return Error{"has a number too large: " + std::string(part)};
        start = dot + 1;
    }
    if (start <= core.size()) return Error{"needs exactly MAJOR.MINOR.PATCH, e.g. 1.2.0"};
    size_t s = 0;
    while (!pre.empty() && s <= pre.size()) {
        size_t dot = pre.find('.', s);
        if (dot == std::string_view::npos) dot = pre.size();
        const std::string_view id = pre.substr(s, dot - s);
        const bool ok = !id.empty() && std::all_of(id.begin(), id.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
        });
        if (!ok || (isNumeric(id) && id.size() > 1 && id[0] == '0'))
            return Error{"has a bad prerelease part " + quote(std::string(id)) + "; use [0-9A-Za-z-] identifiers, e.g. 1.2.0-rc.1"};
        v.prerelease.emplace_back(id);
        s = dot + 1;
    }
    return v;
}

int compareVersions(const Version& a, const Version& b) {
    auto cmp = [](uint64_t x, uint64_t y) { return x < y ? -1 : x > y ? 1 : 0; };
    if (int c = cmp(a.major, b.major)) return c;
    if (int c = cmp(a.minor, b.minor)) return c;
    if (int c = cmp(a.patch, b.patch)) return c;
    // A version with a prerelease is lower than the same version without one.
    if (a.prerelease.empty() != b.prerelease.empty()) return a.prerelease.empty() ? 1 : -1;
    for (size_t i = 0; i < std::min(a.prerelease.size(), b.prerelease.size()); ++i) {
        const std::string &x = a.prerelease[i], &y = b.prerelease[i];
        const bool nx = isNumeric(x), ny = isNumeric(y);
        if (nx && ny) {
            if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;  // no leading zeros: longer is larger
            if (int c = x.compare(y)) return c < 0 ? -1 : 1;
        } else if (nx != ny) {
            return nx ? -1 : 1;  // numeric identifiers are lower than alphanumeric ones
        } else if (int c = x.compare(y)) {
            return c < 0 ? -1 : 1;
        }
    }
    return cmp(a.prerelease.size(), b.prerelease.size());
}

const Component* Manifest::find(std::string_view wanted) const {
    for (const auto& c : components)
        if (c.id == wanted) return &c;
    return nullptr;
}

Result<Manifest> parseManifest(std::string_view text, const std::string& sourceName) {
    Reader rd{sourceName};
    toml::table root;
    try {
        root = toml::parse(text, sourceName);
    } catch (const toml::parse_error& e) {
        return Error{rd.at(e.source()).str() + ": " + printable(e.description(), 200)};
    }
    Manifest m;
    m.file = sourceName;
    if (auto err = unknownKey(rd, root, {"schema_version", "id", "version", "api_version", "description", "component"},
                              "the manifest"))
        return *err;
    SourceLocation schemaWhere;
    if (auto err = readInteger(rd, root, "schema_version", m.schemaVersion, &schemaWhere, "1")) return *err;
    if (m.schemaVersion != kManifestSchemaVersion)
        return Error{schemaWhere.str() + ": schema_version " + std::to_string(m.schemaVersion) +
                     " is not supported; this rackterm reads schema_version " + std::to_string(kManifestSchemaVersion) +
                     (m.schemaVersion > kManifestSchemaVersion ? " (the package needs a newer rackterm)" : "")};
    if (auto err = readString(rd, root, "id", m.id, &m.idWhere, "\"mydrive\"", "the manifest")) return *err;
    if (!validPackageId(m.id))
        return Error{m.idWhere.str() + ": id " + quote(m.id) +
                     " must be 1 to 64 of [a-z0-9_-] starting with a letter or digit, e.g. id = \"my-drive\""};
    std::string versionText;
    if (auto err = readString(rd, root, "version", versionText, &m.versionWhere, "\"1.0.0\"", "the manifest")) return *err;
    auto version = parseVersion(versionText);
    if (!version)
        return Error{m.versionWhere.str() + ": version " + quote(versionText) + " is not a semantic version: " + version.error()};
    m.version = std::move(version.value());
    if (auto err = readInteger(rd, root, "api_version", m.apiVersion, &m.apiWhere, "2")) return *err;
    if (auto err = readString(rd, root, "description", m.description, nullptr, nullptr, "the manifest")) return *err;
    const toml::node* comps = root.get("component");
    if (!comps) return rd.error(root.source(), "the manifest lists no [[component]]; add one: [[component]] id = \"drive\" path = \"build/libdrive.so\" kind = \"dsp\"");
    const toml::array* list = comps->as_array();
    if (!list || !list->is_array_of_tables())
        return rd.error(comps->source(), "component must be [[component]] tables, each with id, path and kind");
    for (const toml::node& node : *list) {
        const toml::table& t = *node.as_table();
        Component c;
        c.where = rd.at(t.source());
        if (auto err = unknownKey(rd, t, {"id", "path", "kind"}, "[[component]]")) return *err;
        SourceLocation idWhere, kindWhere;
        if (auto err = readString(rd, t, "id", c.id, &idWhere, "\"drive\"", "[[component]]")) return *err;
        if (!validComponentId(c.id))
            return Error{idWhere.str() + ": component id " + quote(c.id) +
                         " must be 1 to 64 of [a-z0-9_] (it is also the processor's id), e.g. id = \"drive\""};
        if (const Component* other = m.find(c.id))
            return Error{idWhere.str() + ": component id " + quote(c.id) + " is used twice (first at " + other->where.str() +
                         "); give each component its own id"};
        if (auto err = readString(rd, t, "path", c.path, &c.pathWhere, "\"build/libdrive.so\"", "[[component]]")) return *err;
        if (c.path.empty()) return Error{c.pathWhere.str() + ": path is empty; name the component's .so, e.g. \"build/libdrive.so\""};
        if (auto err = readString(rd, t, "kind", c.kind, &kindWhere, "\"dsp\"", "[[component]]")) return *err;
        if (c.kind != "dsp")
            return Error{kindWhere.str() + ": kind " + quote(c.kind) + " is not known; the kinds are: dsp" +
                         didYouMean(c.kind, {"dsp"})};
        m.components.push_back(std::move(c));
    }
    return m;
}

Result<Manifest> loadManifest(const std::string& path) {
    auto text = files::readRegularFile(path, 1u << 20, "package manifest");
    if (!text) return Error{text.error()};
    return parseManifest(text.value(), path);
}

}  // namespace rackterm::config
