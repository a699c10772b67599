/* symtest_prog.cpp: C++ half of the symbolizer test target, built at -O0.
 *
 * This file implements a member function and a free function in a namespace (names that need
 * DW_AT_specification and demangling) and a plain extern "C" function, each recording its
 * return address through symtest_record(). See symtest_prog.c.
 */
extern "C" void symtest_record(int slot);

namespace hwtest {

struct Widget {
	int v;
	int poke(int k);
};

int Widget::poke(int k)
{
	symtest_record(2); /* @mark cpp_method_call */
	return v + k;
}

int free_fn(int k)
{
	symtest_record(4); /* @mark cpp_free_call */
	return k + 1;
}

} // namespace hwtest

extern "C" int symtest_plain_o0(int x)
{
	symtest_record(3); /* @mark plain_call */
	return x - 1;
}

extern "C" int symtest_cpp(int x)
{
	hwtest::Widget w{x};
	return w.poke(2) + hwtest::free_fn(x);
}
