namespace DynaSmp.Jit.Fpu;

/// <summary>A double-double number (hi + lo, |lo| &lt;= ulp(hi)/2): about 106 significant bits from IEEE binary64
/// operations and FMA, which .NET evaluates identically on every host. Used for the x87 transcendentals, whose
/// results then round once to 64 bits.</summary>
public readonly struct DD
{
    public readonly double Hi, Lo;
    public DD(double hi, double lo = 0) { Hi = hi; Lo = lo; }

    static DD QuickTwoSum(double a, double b)
    {
        double s = a + b;
        return new DD(s, b - (s - a));
    }

    static DD TwoSum(double a, double b)
    {
        double s = a + b, bb = s - a;
        return new DD(s, (a - (s - bb)) + (b - bb));
    }

    public static DD operator +(DD a, DD b)
    {
        var s = TwoSum(a.Hi, b.Hi);
        var t = TwoSum(a.Lo, b.Lo);
        var u = QuickTwoSum(s.Hi, s.Lo + t.Hi);
        return QuickTwoSum(u.Hi, u.Lo + t.Lo);
    }

    public static DD operator -(DD a) => new(-a.Hi, -a.Lo);
    public static DD operator -(DD a, DD b) => a + -b;

    public static DD operator *(DD a, DD b)
    {
        double p = a.Hi * b.Hi;
        double e = Math.FusedMultiplyAdd(a.Hi, b.Hi, -p);
        e += a.Hi * b.Lo + a.Lo * b.Hi;
        return QuickTwoSum(p, e);
    }

    public static DD operator *(DD a, double b) => a * new DD(b);

    public static DD operator /(DD a, DD b)
    {
        double q1 = a.Hi / b.Hi;
        var r = a - b * q1;
        double q2 = r.Hi / b.Hi;
        r -= b * q2;
        double q3 = r.Hi / b.Hi;
        return QuickTwoSum(q1, q2) + new DD(q3);
    }

    public static DD Scale(DD a, int n) => new(Math.ScaleB(a.Hi, n), Math.ScaleB(a.Lo, n));

    // pi/2 in three parts and ln 2 in two (each part the binary64 nearest to what the previous ones leave).
    public const double PiO2A = 1.5707963267948966, PiO2B = 6.123233995736766e-17, PiO2C = -1.4973849048591698e-33,
        PiO2D = 5.562271104316826e-50;
    public static readonly DD PiO2 = new DD(PiO2A, PiO2B) + new DD(PiO2C);
    public static readonly DD Pi = Scale(PiO2, 1);
    public static readonly DD PiO4 = Scale(PiO2, -1);
    public static readonly DD Ln2 = new(0.6931471805599453, 2.3190468138462996e-17);
    public static readonly DD One = new(1);

    /// <summary>exp(t) - 1 by its Taylor series; accurate for |t| &lt;= 1.</summary>
    public static DD Expm1(DD t)
    {
        DD sum = t, term = t;
        for (int n = 2; n < 40; n++)
        {
            term = term * t / new DD(n);
            sum += term;
            if (Math.Abs(term.Hi) < Math.Abs(sum.Hi) * 1e-34) break;
        }
        return sum;
    }

    /// <summary>sin and cos of |r| &lt;= pi/4 by their Taylor series.</summary>
    public static void SinCosSeries(DD r, out DD sin, out DD cos)
    {
        DD r2 = r * r;
        DD s = r, ts = r, c = One, tc = One;
        for (int n = 1; n < 30; n++)
        {
            ts = -(ts * r2) / new DD((2.0 * n) * (2.0 * n + 1));
            tc = -(tc * r2) / new DD((2.0 * n - 1) * (2.0 * n));
            s += ts;
            c += tc;
            if (Math.Abs(ts.Hi) < 1e-36 && Math.Abs(tc.Hi) < 1e-36) break;
        }
        sin = s;
        cos = c;
    }

    /// <summary>sin and cos of x (|x| &lt; 2^64). The reduction x - k*pi/2 subtracts exact products k * (4-part pi/2)
    /// from the exact argument, twice (k is a binary64 integer, which need not be the nearest one for |x| &gt; 2^53), so
    /// the reduced argument keeps an absolute error near 2^-100.</summary>
    public static void SinCos(DD x, out DD sin, out DD cos)
    {
        DD r = x;
        double quadrant = 0;
        for (int pass = 0; pass < 2; pass++)
        {
            double k = Math.Round(r.Hi / PiO2A);
            if (k == 0) break;
            r = r - TwoProd(k, PiO2A) - TwoProd(k, PiO2B) - TwoProd(k, PiO2C) - new DD(k * PiO2D);
            quadrant += Math.IEEERemainder(k, 4);
        }
        SinCosSeries(r, out var s, out var c);
        switch (((long)quadrant % 4 + 4) % 4)
        {
            case 0: sin = s; cos = c; break;
            case 1: sin = c; cos = -s; break;
            case 2: sin = -s; cos = -c; break;
            default: sin = -c; cos = s; break;
        }
    }

    static DD TwoProd(double a, double b)
    {
        double p = a * b;
        return new DD(p, Math.FusedMultiplyAdd(a, b, -p));
    }

    /// <summary>atan(z) by two Newton steps on sin(y) - z cos(y) from the binary64 arctangent.</summary>
    public static DD Atan(DD z)
    {
        DD y = new(Math.Atan(z.Hi));
        for (int k = 0; k < 2; k++)
        {
            SinCos(y, out var s, out var c);
            y -= (s - z * c) / (c + z * s);
        }
        return y;
    }

    /// <summary>ln(m) for m in [0.5, 2] by two Newton steps on exp(y) - m.</summary>
    public static DD Log(DD m)
    {
        DD y = new(Math.Log(m.Hi));
        for (int k = 0; k < 2; k++) y += (m * (Expm1(-y) + One)) - One;
        return y;
    }

    /// <summary>ln(1 + x) for |x| &lt; 0.3 by two Newton steps on expm1(y) - x.</summary>
    public static DD Log1p(DD x)
    {
        DD y = new(double.LogP1(x.Hi));
        for (int k = 0; k < 2; k++)
        {
            DD em = Expm1(y);
            y -= (em - x) / (em + One);
        }
        return y;
    }
}
