// BIND key files and ldns's TSIG algorithm names (see tsig_key.h).
//
// ldns 1.8.3 TSIG algorithms (ldns_digest_function in tsig.c): it knows
// "hmac-md5.sig-alg.reg.int.", "hmac-sha1.", "hmac-sha256.", "hmac-sha512."
// and "hmac-shac384." (sic: a typo, so hmac-sha384 keys cannot sign); it has
// no hmac-sha224.
#include "daemon/outside/tsig_key.h"

#include <algorithm>
#include <cctype>
#include <memory>

// ldns's common.h defines bool, true and false as macros unless
// __bool_true_false_are_defined is set, which <stdbool.h> does (also in C++).
#include <stdbool.h>
#include <ldns/ldns.h>

namespace rais {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// A key's name is a domain name (ldns reads it, relative or absolute).
bool is_domain_name(std::string text) {
    if (text.empty()) return false;
    if (text.back() != '.') text += '.';
    std::unique_ptr<ldns_rdf, void (*)(ldns_rdf*)> d(ldns_dname_new_frm_str(text.c_str()), ldns_rdf_deep_free);
    return d != nullptr;
}

struct Token {
    enum class Kind { Word, String, Punct, End };
    Kind kind = Kind::End;
    std::string text;
    int line = 1;
};

class Lexer {
public:
    explicit Lexer(const std::string& text) : t_(text) {}

    // The next token; false and *error on an unterminated string or comment.
    bool next(Token* tok, std::string* error) {
        for (;;) {
            while (i_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[i_]))) {
                if (t_[i_] == '\n') ++line_;
                ++i_;
            }
            if (i_ >= t_.size()) {
                *tok = Token{Token::Kind::End, "end of file", line_};
                return true;
            }
            if (t_[i_] == '#' || t_.compare(i_, 2, "//") == 0) {
                while (i_ < t_.size() && t_[i_] != '\n') ++i_;
                continue;
            }
            if (t_.compare(i_, 2, "/*") == 0) {
                int start = line_;
                auto end = t_.find("*/", i_ + 2);
                if (end == std::string::npos) {
                    *error = "line " + std::to_string(start) + ": unterminated comment";
                    return false;
                }
                line_ += static_cast<int>(std::count(t_.begin() + static_cast<long>(i_), t_.begin() + static_cast<long>(end), '\n'));
                i_ = end + 2;
                continue;
            }
            break;
        }
        char c = t_[i_];
        if (c == '{' || c == '}' || c == ';') {
            *tok = Token{Token::Kind::Punct, std::string(1, c), line_};
            ++i_;
            return true;
        }
        if (c == '"') {
            auto end = t_.find('"', i_ + 1);
            if (end == std::string::npos || t_.find('\n', i_ + 1) < end) {
                *error = "line " + std::to_string(line_) + ": unterminated string";
                return false;
            }
            *tok = Token{Token::Kind::String, t_.substr(i_ + 1, end - i_ - 1), line_};
            i_ = end + 1;
            return true;
        }
        std::size_t start = i_;
        while (i_ < t_.size() && !std::isspace(static_cast<unsigned char>(t_[i_])) && t_[i_] != '{' && t_[i_] != '}' &&
               t_[i_] != ';' && t_[i_] != '"')
            ++i_;
        *tok = Token{Token::Kind::Word, t_.substr(start, i_ - start), line_};
        return true;
    }

private:
    const std::string& t_;
    std::size_t i_ = 0;
    int line_ = 1;
};

std::string where(const Token& t) { return "line " + std::to_string(t.line) + ": "; }
std::string shown(const Token& t) { return t.kind == Token::Kind::End ? "end of file" : "'" + t.text + "'"; }

bool valid_base64(const std::string& s) {
    if (s.empty() || s.size() % 4 != 0) return false;
    std::size_t pad = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '=') {
            ++pad;
            continue;
        }
        if (pad) return false;   // '=' only at the end
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return false;
    }
    return pad <= 2 && s.size() > pad;
}

}  // namespace

std::optional<std::string> ldns_tsig_algorithm(const std::string& algorithm, std::string* why) {
    if (algorithm == "hmac-md5") return std::string("hmac-md5.sig-alg.reg.int.");
    if (algorithm == "hmac-sha1" || algorithm == "hmac-sha256" || algorithm == "hmac-sha512") return algorithm + ".";
    if (algorithm == "hmac-sha384")
        *why = "algorithm hmac-sha384 does not work with ldns 1.8.3 (a typo in its algorithm table: it cannot sign "
               "with it); make the key with `tsig-keygen -a hmac-sha256`";
    else if (algorithm == "hmac-sha224")
        *why = "algorithm hmac-sha224 is not implemented by ldns 1.8.3; make the key with `tsig-keygen -a hmac-sha256`";
    else
        *why = "unknown algorithm '" + algorithm + "' (use hmac-sha256; also hmac-sha512, hmac-sha1, hmac-md5)";
    return std::nullopt;
}

std::optional<TsigKey> parse_bind_key(const std::string& text, std::string* error) {
    std::string scratch;
    if (!error) error = &scratch;
    Lexer lex(text);
    Token t;
    std::optional<TsigKey> found;
    auto next = [&](Token* tok) { return lex.next(tok, error); };
    for (;;) {
        if (!next(&t)) return std::nullopt;
        if (t.kind == Token::Kind::End) break;
        if (t.kind != Token::Kind::Word || t.text != "key") {
            *error = where(t) + "expected a key statement, found " + shown(t);
            return std::nullopt;
        }
        if (found) {
            *error = where(t) + "a second key statement: the file must hold one key";
            return std::nullopt;
        }
        TsigKey key;
        if (!next(&t)) return std::nullopt;
        if ((t.kind != Token::Kind::Word && t.kind != Token::Kind::String) || t.text.empty()) {
            *error = where(t) + "expected the key's name after 'key', found " + shown(t);
            return std::nullopt;
        }
        key.name = t.text;
        int key_line = t.line;
        if (!is_domain_name(key.name)) {
            *error = where(t) + "key name '" + key.name + "' is not a domain name";
            return std::nullopt;
        }
        if (!next(&t)) return std::nullopt;
        if (t.kind != Token::Kind::Punct || t.text != "{") {
            *error = where(t) + "expected '{' after key \"" + key.name + "\", found " + shown(t);
            return std::nullopt;
        }
        bool have_algorithm = false, have_secret = false;
        for (;;) {
            if (!next(&t)) return std::nullopt;
            if (t.kind == Token::Kind::Punct && t.text == "}") break;
            if (t.kind != Token::Kind::Word || (t.text != "algorithm" && t.text != "secret")) {
                *error = where(t) + "expected 'algorithm', 'secret' or '}' in key \"" + key.name + "\", found " + shown(t);
                return std::nullopt;
            }
            std::string clause = t.text;
            Token value;
            if (!next(&value)) return std::nullopt;
            if ((value.kind != Token::Kind::Word && value.kind != Token::Kind::String) || value.text.empty()) {
                *error = where(value) + "expected a value after '" + clause + "', found " + shown(value);
                return std::nullopt;
            }
            if (!next(&t)) return std::nullopt;
            if (t.kind != Token::Kind::Punct || t.text != ";") {
                *error = where(t) + "expected ';' after " + clause + " " + value.text + ", found " + shown(t);
                return std::nullopt;
            }
            if (clause == "algorithm") {
                std::string alg = lower(value.text);
                if (!alg.empty() && alg.back() == '.') alg.pop_back();
                if (alg == "hmac-md5.sig-alg.reg.int") alg = "hmac-md5";
                std::string why;
                if (!ldns_tsig_algorithm(alg, &why)) {
                    *error = where(value) + why;
                    return std::nullopt;
                }
                key.algorithm = alg;
                have_algorithm = true;
            } else {
                if (!valid_base64(value.text)) {
                    *error = where(value) + "the secret of key \"" + key.name + "\" is not base64";
                    return std::nullopt;
                }
                key.secret = value.text;
                have_secret = true;
            }
        }
        if (!next(&t)) return std::nullopt;
        if (t.kind != Token::Kind::Punct || t.text != ";") {
            *error = where(t) + "expected ';' after the '}' of key \"" + key.name + "\", found " + shown(t);
            return std::nullopt;
        }
        if (!have_algorithm || !have_secret) {
            *error = "line " + std::to_string(key_line) + ": key \"" + key.name + "\" has no " +
                     (have_algorithm ? "secret" : "algorithm");
            return std::nullopt;
        }
        found = std::move(key);
    }
    if (!found) *error = "no key statement (expected: key \"NAME\" { algorithm hmac-sha256; secret \"...\"; };)";
    return found;
}

}  // namespace rais
