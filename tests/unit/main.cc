// Runs every CppUnit suite registered in the default registry.
//
// Usage: unit-tests [TEST_PATH]   (e.g. "PlannerTest" or "PlannerTest::testIPv6Addresses")
//
// The last line of output is always `unit: N passed, M failed`, counting test
// methods (not assertions), so scripts and CI can read one stable summary.
// The exit status is 0 only if every test method passed.

#include <cppunit/Test.h>
#include <cppunit/TestFailure.h>
#include <cppunit/TestListener.h>
#include <cppunit/TestResult.h>
#include <cppunit/extensions/TestFactoryRegistry.h>
#include <cppunit/ui/text/TestRunner.h>

#include <exception>
#include <iostream>
#include <string>

namespace {

// CppUnit's own result counts failures and errors per assertion report; a
// test method that both fails and then errors would be counted twice. This
// listener counts each test method once.
class MethodCounter : public CppUnit::TestListener {
public:
    void startTest(CppUnit::Test*) override { current_failed_ = false; }
    void addFailure(const CppUnit::TestFailure&) override { current_failed_ = true; }
    void endTest(CppUnit::Test*) override { (current_failed_ ? failed_ : passed_)++; }

    unsigned passed() const { return passed_; }
    unsigned failed() const { return failed_; }

private:
    bool current_failed_ = false;
    unsigned passed_ = 0, failed_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    std::string path = argc > 1 ? argv[1] : "";

    CppUnit::TextUi::TestRunner runner;
    runner.addTest(CppUnit::TestFactoryRegistry::getRegistry().makeTest());
    MethodCounter counter;
    runner.eventManager().addListener(&counter);

    // TestRunner::run throws std::invalid_argument for an unknown path: that
    // is a usage error, not a test failure.
    try {
        runner.run(path, false, true, true);
    } catch (const std::exception& e) {
        std::cerr << "unit: " << e.what() << "\n";
        std::cout << "unit: 0 passed, 0 failed" << std::endl;
        return 2;
    }
    std::cout << "unit: " << counter.passed() << " passed, " << counter.failed() << " failed" << std::endl;
    return counter.failed() == 0 && counter.passed() > 0 ? 0 : 1;
}
