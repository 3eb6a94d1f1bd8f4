// Shared by the unit tests: the three-host group most tests use (any other
// host is a hot spare) and an address parser that fails the test on a typo.
#pragma once

#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <variant>
#include <vector>

#include "core/address.h"

namespace rais::test {

inline const char* const kAddresses = "n1=198.18.0.101/24 n2=198.18.0.102/24 n3=198.18.0.103/24";
inline const char* const A1 = "198.18.0.101/24";
inline const char* const A2 = "198.18.0.102/24";
inline const char* const A3 = "198.18.0.103/24";

inline ServiceAddress addr(const std::string& text) {
    std::string why;
    auto a = ServiceAddress::parse(text, &why);
    CPPUNIT_ASSERT_MESSAGE("test bug: bad address " + text + ": " + why, a.has_value());
    return *a;
}

// The effects of type T in a step's list (a Member's or the address
// sequencer's: any vector of std::variant), in order.
template <class T, class List> std::vector<T> all(const List& fx) {
    std::vector<T> v;
    for (const auto& e : fx)
        if (const T* x = std::get_if<T>(&e)) v.push_back(*x);
    return v;
}
template <class T, class List> std::size_t count(const List& fx) { return all<T>(fx).size(); }

}  // namespace rais::test
