#include "pace.h"

void
pace_init(struct pace *p, uint64_t rate, uint32_t unit, uint64_t now_ns)
{
	p->rate = (double)rate;
	p->unit = (double)unit;
	p->cap = p->rate * (double)PACE_BURST_NS / 1e9;
	if (p->cap < p->unit)
		p->cap = p->unit;
	p->credit = 0;
	p->last_ns = now_ns;
}

void
pace_refill(struct pace *p, uint64_t now_ns)
{
	if (now_ns > p->last_ns) {
		p->credit += p->rate * (double)(now_ns - p->last_ns) / 1e9;
		if (p->credit > p->cap)
			p->credit = p->cap;
	}
	p->last_ns = now_ns;
}

int
pace_take(struct pace *p)
{
	if (p->rate <= 0 || p->credit < p->unit)
		return 0;
	p->credit -= p->unit;
	return 1;
}
