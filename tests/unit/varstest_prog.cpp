/* varstest_prog.cpp: C++ half of the DWARF variables test target (varstest_prog.c).
 *
 * This file implements a class hierarchy with virtual functions in a namespace (base classes
 * as members, vtables), a static class member, a template, a global pointer to a derived
 * object through its base, and a std::string (whose mangled name has an ABI tag). It prints,
 * like the C half:
 *   addr NAME A    off T.M N    size T N
 *   vptr g_obj A   the vtable pointer stored in *g_obj (inside _ZTVN2ns7DerivedE)
 */
#include <cstdint>
#include <cstdio>
#include <string>

extern "C" uintptr_t varstest_bias;

namespace ns {

struct Base {
	virtual ~Base() {}
	long b = 1;
};

class Derived : public Base {
public:
	~Derived() override {}
	int d = 2;
	Base *peer = nullptr;
};

struct Cls {
	static Cls *s_inst;
	int v;
};

Cls *Cls::s_inst;

template <class T> struct Box {
	T *item;
	unsigned long n;
};

} // namespace ns

ns::Base *g_obj;
ns::Box<ns::Derived> g_box;
std::string g_label = "label"; /* mangled with an ABI tag: g_label[abi:cxx11] */

extern "C" void varstest_cpp(void)
{
	ns::Derived *d = new ns::Derived;

	g_obj = d;
	g_box.item = d;
	ns::Cls::s_inst = new ns::Cls;
	std::printf("addr g_obj %#lx\n", (unsigned long)((uintptr_t)&g_obj - varstest_bias));
	std::printf("addr g_box %#lx\n", (unsigned long)((uintptr_t)&g_box - varstest_bias));
	std::printf("addr g_label %#lx\n", (unsigned long)((uintptr_t)&g_label - varstest_bias));
	std::printf("addr ns::Cls::s_inst %#lx\n",
		    (unsigned long)((uintptr_t)&ns::Cls::s_inst - varstest_bias));
	std::printf("vptr g_obj %#lx\n", (unsigned long)(*(uintptr_t *)g_obj - varstest_bias));
	std::printf("off Derived.d %ld\n", (long)((char *)&d->d - (char *)d));
	std::printf("off Derived.peer %ld\n", (long)((char *)&d->peer - (char *)d));
	std::printf("off Base.b %ld\n", (long)((char *)&d->b - (char *)static_cast<ns::Base *>(d)));
	std::printf("size Derived %zu\n", sizeof(ns::Derived));
}
