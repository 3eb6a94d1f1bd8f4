// TsigKey: the TSIG keys DNS updates are signed with (RFC 8945), as BIND's
// key files (`tsig-keygen`) write them, and the names ldns knows their
// algorithms by. Parsing only: the caller reads the file and names it in
// its messages.
//
// Invariant: a key parse_bind_key() accepts has an algorithm
// ldns_tsig_algorithm() accepts, so DnsUpdater can sign with every key it
// was given.
#pragma once

#include <optional>
#include <string>

namespace rais {

// A TSIG key as BIND's key files write it. algorithm is lower case without a
// trailing dot ("hmac-sha256"); secret is the base64 text.
struct TsigKey {
    std::string name, algorithm, secret;
};

// Parses the text of a BIND key file holding one key statement (comments
// #, //, /* */ allowed). Algorithms (those ldns 1.8.3 computes correctly):
// hmac-md5, hmac-sha1, hmac-sha256, hmac-sha512. hmac-sha384 is refused
// (ldns 1.8.3 misspells its name and cannot sign with it), and so is
// hmac-sha224 (ldns 1.8.3 has no digest for it). On error returns nullopt
// and *error says what and where ("line 3: ..."); the caller names the file.
std::optional<TsigKey> parse_bind_key(const std::string& text, std::string* error);

// The name ldns signs `algorithm` (as in TsigKey) with ("hmac-sha256."), or
// nullopt and *why: what is wrong and which algorithm to use instead.
std::optional<std::string> ldns_tsig_algorithm(const std::string& algorithm, std::string* why);

}  // namespace rais
