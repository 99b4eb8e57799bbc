/**
 * The globals transformers gives every chat template besides the Python-printing interpreter (jinja-py.ts): Python's
 * range() and transformers' strftime_now.
 */

/** Python's range(): range(stop), range(start, stop[, step]). */
export function pyRange(...args: number[]): number[] {
  const [start, stop, step] = args.length === 1 ? [0, args[0], 1] : [args[0], args[1], args[2] ?? 1];
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** transformers' strftime_now: datetime.now().strftime(format), local time (common directives). */
export function strftimeNow(format: string, now = new Date()): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  return format.replace(/%([a-zA-Z%])/g, (all, d: string) => {
    switch (d) {
      case 'Y':
        return String(now.getFullYear());
      case 'y':
        return p2(now.getFullYear() % 100);
      case 'm':
        return p2(now.getMonth() + 1);
      case 'd':
        return p2(now.getDate());
      case 'e':
        return String(now.getDate()).padStart(2, ' ');
      case 'H':
        return p2(now.getHours());
      case 'M':
        return p2(now.getMinutes());
      case 'S':
        return p2(now.getSeconds());
      case 'B':
        return MONTHS[now.getMonth()];
      case 'b':
        return MONTHS[now.getMonth()].slice(0, 3);
      case 'A':
        return DAYS[now.getDay()];
      case 'a':
        return DAYS[now.getDay()].slice(0, 3);
      case '%':
        return '%';
      default:
        return all;
    }
  });
}
