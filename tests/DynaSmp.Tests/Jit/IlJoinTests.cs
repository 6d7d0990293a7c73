using System.Reflection.Emit;
using DynaSmp.Jit.Translation;

namespace DynaSmp.Tests.Jit;

/// <summary>Slow paths that rejoin the main line are placed just before their join label (Il.BeforeJoin), so both
/// branches around them go forward; one whose label was marked first still gets emitted, at the end.</summary>
public class IlJoinTests
{
    static (DynamicMethod Method, Il Il) NewMethod()
    {
        var m = new DynamicMethod("join_test", typeof(int), [typeof(int)], typeof(IlJoinTests).Module, true);
        return (m, new Il(m.GetILGenerator()));
    }

    [Fact]
    public void Slow_path_is_emitted_before_its_join_and_the_method_computes_both_ways()
    {
        var (m, il) = NewMethod();
        var result = il.Gen.DeclareLocal(typeof(int));
        Label slow = il.Label(), join = il.Label();
        int bodyAt = -1, joinAt = -1;
        // result = arg < 10 ? arg * 2 (fast) : 1000 (slow path)
        il.Gen.Emit(OpCodes.Ldarg_0); il.ConstI4(10); il.Emit(OpCodes.Bge, slow);
        il.Gen.Emit(OpCodes.Ldarg_0); il.ConstI4(2); il.Emit(OpCodes.Mul); il.Gen.Emit(OpCodes.Stloc, result);
        il.BeforeJoin(join, () =>
        {
            bodyAt = il.Gen.ILOffset;
            il.Mark(slow);
            il.ConstI4(1000); il.Gen.Emit(OpCodes.Stloc, result);
            il.Emit(OpCodes.Br, join);
        });
        Assert.Equal(-1, bodyAt); // nothing emitted until the join is marked
        il.Mark(join);
        joinAt = il.Gen.ILOffset;
        il.Gen.Emit(OpCodes.Ldloc, result); il.Emit(OpCodes.Ret);
        il.EmitPendingJoins();

        Assert.InRange(bodyAt, 0, joinAt - 1);
        var f = m.CreateDelegate<Func<int, int>>();
        Assert.Equal(14, f(7));
        Assert.Equal(1000, f(12));
    }

    [Fact]
    public void Slow_path_whose_join_was_marked_first_is_emitted_by_EmitPendingJoins()
    {
        var (m, il) = NewMethod();
        Label slow = il.Label(), join = il.Label(), tail = il.Label();
        var result = il.Gen.DeclareLocal(typeof(int));
        il.ConstI4(5); il.Gen.Emit(OpCodes.Stloc, result);
        il.Gen.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Brtrue, slow);
        il.Mark(join);
        il.Gen.Emit(OpCodes.Ldloc, result); il.Emit(OpCodes.Ret);
        bool emitted = false;
        il.BeforeJoin(join, () =>
        {
            emitted = true;
            il.Mark(slow);
            il.ConstI4(9); il.Gen.Emit(OpCodes.Stloc, result);
            il.Emit(OpCodes.Br, join);
        });
        il.Mark(tail); // an unrelated label does not emit it
        Assert.False(emitted);
        il.EmitPendingJoins();
        Assert.True(emitted);

        var f = m.CreateDelegate<Func<int, int>>();
        Assert.Equal(5, f(0));
        Assert.Equal(9, f(1));
    }
}
