// An order of the contract as an actor receives it: its type is the order, its payload as the table
// types it, for machines' event unions.
import type { TypedMessage } from "../runtime/actor-family.ts";
import type { ContractSubject, OrderName, OrderPayload } from "./contract-table.ts";

export type ContractMessage<S extends ContractSubject, O extends OrderName<S>> = TypedMessage<O, OrderPayload<S, O>>;
